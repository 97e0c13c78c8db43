"""``python -m bullmq_sync ...`` runs the ``bullmq-sync`` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
