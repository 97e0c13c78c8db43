"""The ``manage.py check`` of ``settings.BULLMQ``: URL, prefix, pool size, queue names.

Everything is checked offline (no connection is opened), so ``check`` passes or fails the
same way on a build machine without Redis.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register  # type: ignore[import-untyped]

from .queues import settings_problems


def check_bullmq_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """One ``Error`` per problem in ``settings.BULLMQ`` (ids ``bullmq_sync.E001``...)."""
    return [
        Error(problem.message, hint=problem.hint or None, id=problem.id)
        for problem in settings_problems()
    ]


register(check_bullmq_settings, "bullmq_sync")
