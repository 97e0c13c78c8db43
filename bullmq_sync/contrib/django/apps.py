"""The Django app config of the bullmq-sync integration."""

# mypy: allow-subclassing-any
from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]


class BullMQConfig(AppConfig):
    """``bullmq_sync.contrib.django``: a system check of the settings, pool created on first use."""

    name = "bullmq_sync.contrib.django"
    label = "bullmq_sync"
    verbose_name = "BullMQ (bullmq-sync)"

    def ready(self) -> None:
        # Bad settings are reported by `manage.py check` (and before runserver/migrate) as
        # system check errors, and raise ImproperlyConfigured at first use; never a traceback
        # at import time.
        from . import checks  # noqa: F401  (registers the check)
