"""The ``bullmq-sync`` command line (also ``python -m bullmq_sync``); see ``main``."""

from .main import main

__all__ = ["main"]
