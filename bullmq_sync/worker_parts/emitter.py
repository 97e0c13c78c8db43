"""A worker's listeners and the events it emits (the names and arguments of BullMQ 6.7's)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import log
from ..errors import InvalidArgument

EVENTS = (
    "active",
    "closed",
    "closing",
    "completed",
    "drained",
    "error",
    "failed",
    "paused",
    "progress",
    "ready",
    "resumed",
    "stalled",
    "lockRenewalFailed",
    "locksRenewed",
)
"""``active``(job), ``completed``(job, result), ``failed``(job, error), ``progress``(job,
progress), ``stalled``(job_id), ``error``(error), ``closing``(message), ``lockRenewalFailed``
(job_ids), ``locksRenewed``({"count", "jobIds"}); the others take no argument."""


class Emitter:
    """Listeners per event; a listener that raises is reported as an ``error``, never fatal."""

    def __init__(self, queue_name: str, worker_id: str) -> None:
        self._queue_name = queue_name
        self._worker_id = worker_id
        self._listeners: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}
        self._lock = threading.Lock()

    def on(self, event: str, callback: Callable[..., Any]) -> None:
        if event not in self._listeners:
            raise InvalidArgument(f"unknown worker event {event!r}; expected one of {EVENTS}")
        if not callable(callback):
            raise InvalidArgument(f"a listener must be callable, got {callback!r}")
        with self._lock:
            self._listeners[event] = [*self._listeners[event], callback]

    def off(self, event: str, callback: Callable[..., Any]) -> None:
        if event not in self._listeners:
            raise InvalidArgument(f"unknown worker event {event!r}; expected one of {EVENTS}")
        with self._lock:
            self._listeners[event] = [cb for cb in self._listeners[event] if cb is not callback]

    def has(self, event: str) -> bool:
        return bool(self._listeners[event])

    def emit(self, event: str, *args: Any) -> None:
        for callback in self._listeners[event]:
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - a listener must not break the worker
                if event != "error":
                    self.error(exc)

    def error(self, error: BaseException) -> None:
        """Log an error of the worker (not of a job) and tell the ``error`` listeners."""
        log.event(
            "worker.error",
            queue=self._queue_name,
            worker=self._worker_id,
            error=type(error).__name__,
            detail=str(error),
        )
        self.emit("error", error)
