"""The per-process pool, cached queues and enqueue-on-commit of the Django integration."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.db import DEFAULT_DB_ALIAS, transaction  # type: ignore[import-untyped]

from ...connection import DEFAULT_URL, Connection, check_any_url, default_url
from ...errors import ConfigurationError, InvalidArgument
from ...keys import QueueKeys
from ...queue import Queue

_KEYS = frozenset({"URL", "PREFIX", "MAX_CONNECTIONS", "QUEUES", "DASHBOARD"})
"""``DASHBOARD`` (a dict) is read by ``dashboard_views``."""


@dataclass(frozen=True)
class BullMQSettings:
    """``settings.BULLMQ`` with its defaults filled in."""

    url: str = DEFAULT_URL
    prefix: str = "bull"
    max_connections: int = 16
    queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with ``settings.BULLMQ`` (a system check error)."""

    id: str
    message: str
    hint: str = ""


def settings_problems() -> list[Problem]:
    """Everything wrong with ``settings.BULLMQ``, found without connecting to Redis."""
    raw = getattr(settings, "BULLMQ", None) or {}
    if not isinstance(raw, dict):
        return [Problem("bullmq_sync.E001", "settings.BULLMQ must be a dict", _SHAPE_HINT)]
    found: list[Problem] = []
    unknown = set(raw) - _KEYS
    if unknown:
        found.append(
            Problem(
                "bullmq_sync.E002",
                f"unknown settings.BULLMQ key(s) {sorted(unknown)}; expected {sorted(_KEYS)}",
                _SHAPE_HINT,
            )
        )
    url = raw.get("URL") or default_url()
    if not isinstance(url, str):
        found.append(
            Problem("bullmq_sync.E003", f"settings.BULLMQ URL must be a string, got {url!r}")
        )
    else:
        try:
            check_any_url(url)
        except ConfigurationError as exc:
            found.append(Problem("bullmq_sync.E003", f"settings.BULLMQ URL: {exc}", _URL_HINT))
    prefix = raw.get("PREFIX", "bull")
    if not isinstance(prefix, str) or not prefix:
        found.append(
            Problem(
                "bullmq_sync.E004",
                f"settings.BULLMQ PREFIX must be a non-empty string, got {prefix!r}",
            )
        )
    max_connections = raw.get("MAX_CONNECTIONS", 16)
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        found.append(
            Problem(
                "bullmq_sync.E005",
                f"settings.BULLMQ MAX_CONNECTIONS must be a positive int, got {max_connections!r}",
            )
        )
    queues = raw.get("QUEUES", ())
    if isinstance(queues, str) or not isinstance(queues, (list, tuple)):
        found.append(
            Problem(
                "bullmq_sync.E006",
                f"settings.BULLMQ QUEUES must be a list of queue names, got {queues!r}",
            )
        )
    else:
        for name in queues:
            try:
                QueueKeys(name, prefix if isinstance(prefix, str) and prefix else "bull")
            except (InvalidArgument, ConfigurationError) as exc:
                found.append(Problem("bullmq_sync.E006", f"settings.BULLMQ QUEUES: {exc}"))
    return found


_SHAPE_HINT = (
    'BULLMQ = {"URL": "redis://host:6379/0", "PREFIX": "bull", "MAX_CONNECTIONS": 16, '
    '"QUEUES": ["emails"]} (every key optional)'
)
_URL_HINT = "redis://[[user]:password@]host:port[/db], rediss://, unix://, redis+cluster://, redis+sentinel://"


def read_settings() -> BullMQSettings:
    """Read and check ``settings.BULLMQ`` (raises ``ImproperlyConfigured``)."""
    problems = settings_problems()
    if problems:
        raise ImproperlyConfigured("; ".join(p.message for p in problems))
    raw = getattr(settings, "BULLMQ", None) or {}
    return BullMQSettings(
        raw.get("URL") or default_url(),
        raw.get("PREFIX", "bull"),
        raw.get("MAX_CONNECTIONS", 16),
        tuple(raw.get("QUEUES", ())),
    )


class _Cache:
    """One connection and its queues per process (rebuilt after fork or a settings change)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.config: BullMQSettings | None = None
        self.connection: Connection | None = None
        self.queues: dict[str, Queue] = {}

    def current(self) -> tuple[BullMQSettings, Connection]:
        with self.lock:
            if self.connection is None or self.pid != os.getpid() or self.connection.closed:
                self.config = read_settings()
                self.connection = Connection(
                    self.config.url, max_connections=self.config.max_connections
                )
                self.pid = os.getpid()
                self.queues = {}
            assert self.config is not None
            return self.config, self.connection

    def queue(self, name: str) -> Queue:
        config, connection = self.current()
        with self.lock:
            found = self.queues.get(name)
            if found is None or found.connection is not connection:
                found = Queue(name, connection=connection, prefix=config.prefix)
                self.queues[name] = found
            return found

    def reset(self) -> None:
        with self.lock:
            connection, self.connection = self.connection, None
            self.queues = {}
            self.config = None
        if connection is not None and self.pid == os.getpid():
            connection.close()


_cache = _Cache()


def get_connection() -> Connection:
    """This process's pooled ``Connection`` for ``settings.BULLMQ``."""
    return _cache.current()[1]


def get_queue(name: str) -> Queue:
    """The cached ``Queue`` called ``name`` (``settings.BULLMQ`` prefix, shared pool)."""
    return _cache.queue(name)


def reset() -> None:
    """Close the pool and forget cached queues (done automatically when BULLMQ changes)."""
    _cache.reset()


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting == "BULLMQ":
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="bullmq_sync.contrib.django.reset")


def enqueue_on_commit(
    queue: str | Queue,
    name: str,
    data: Any = None,
    *,
    using: str | None = None,
    **opts: Any,
) -> str:
    """Add a job when the current transaction commits; return its id now.

    The id is known before the job exists because it is chosen here: a custom job id
    (``job_id=``/``jobId=`` if given, else a random UUID4 string, which BullMQ can never
    confuse with its own numeric ids). Outside a transaction the job is added at once. On
    rollback nothing is added, and no Redis call was made. ``opts`` are ``Queue.add``'s
    keyword options (``attempts=3``, ``delay=1000``, or BullMQ's ``removeOnComplete=True``).
    """
    job_id = opts.pop("job_id", None) or opts.pop("jobId", None) or str(uuid.uuid4())
    if not isinstance(job_id, str) or not job_id:
        raise InvalidArgument(f"job id must be a non-empty string, got {job_id!r}")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"job data must be JSON-serialisable: {exc}") from exc
    if not isinstance(queue, (str, Queue)):
        raise InvalidArgument(f"queue must be a queue name or a Queue, got {type(queue).__name__}")

    def add() -> None:
        target = get_queue(queue) if isinstance(queue, str) else queue
        target.add(name, data, job_id=job_id, **opts)

    transaction.on_commit(add, using=using or DEFAULT_DB_ALIAS)
    return job_id
