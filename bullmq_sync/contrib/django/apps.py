"""The Django app config of the bullmq-sync integration."""

# mypy: allow-subclassing-any
from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class BullMQConfig(AppConfig):
    """``bullmq_sync.contrib.django``: settings check at startup, pool created on first use."""

    name = "bullmq_sync.contrib.django"
    label = "bullmq_sync"
    verbose_name = "BullMQ (bullmq-sync)"

    def ready(self) -> None:
        from . import queues

        queues.read_settings()  # fail at startup, not at the first request, on bad settings
