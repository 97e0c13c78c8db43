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

from ...connection import DEFAULT_URL, Connection, default_url
from ...errors import InvalidArgument
from ...queue import Queue

_KEYS = frozenset({"URL", "PREFIX", "MAX_CONNECTIONS"})


@dataclass(frozen=True)
class BullMQSettings:
    """``settings.BULLMQ`` with its defaults filled in."""

    url: str = DEFAULT_URL
    prefix: str = "bull"
    max_connections: int = 16


def read_settings() -> BullMQSettings:
    """Read and check ``settings.BULLMQ`` (raises ``ImproperlyConfigured``)."""
    raw = getattr(settings, "BULLMQ", None) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("settings.BULLMQ must be a dict")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown settings.BULLMQ key(s) {sorted(unknown)}; expected {sorted(_KEYS)}"
        )
    url = raw.get("URL") or default_url()
    prefix = raw.get("PREFIX", "bull")
    max_connections = raw.get("MAX_CONNECTIONS", 16)
    if not isinstance(url, str) or not isinstance(prefix, str) or not prefix:
        raise ImproperlyConfigured("settings.BULLMQ URL and PREFIX must be strings")
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or (max_connections < 1)
    ):
        raise ImproperlyConfigured(
            f"settings.BULLMQ MAX_CONNECTIONS must be a positive int, got {max_connections!r}"
        )
    return BullMQSettings(url, prefix, max_connections)


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
