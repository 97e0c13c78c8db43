"""What a processor sees: the cancellation signal of ``cancel_job``, and the job it runs.

BullMQ 6.7 hands a processor that takes a third parameter an ``AbortSignal``;
``worker.cancelJob(id, reason)`` aborts it and the processor decides what to do (usually
throw, which fails the attempt as any error does: remaining attempts apply, and an
``UnrecoverableError`` fails it for good). Here a processor taking a third positional
parameter, or a keyword parameter named ``signal``, gets a ``CancelSignal``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..job import Job

if TYPE_CHECKING:
    from ..queue import Queue


class JobCancelled(Exception):
    """Raised by ``CancelSignal.raise_if_cancelled()``; fails the attempt like any error."""


class CancelSignal:
    """Set by ``worker.cancel_job``; a processor polls or waits on it (thread-safe).

    The event behind ``wait`` is made on first use: most jobs are never waited on, and a
    worker makes one signal per job.
    """

    __slots__ = ("_event", "_flag", "reason")

    _create_lock = threading.Lock()

    def __init__(self) -> None:
        self._event: threading.Event | None = None
        self._flag = False
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (BullMQ's ``signal.aborted``)."""
        return self._flag

    aborted = cancelled

    def _the_event(self) -> threading.Event:
        with CancelSignal._create_lock:
            if self._event is None:
                self._event = threading.Event()
                if self._flag:
                    self._event.set()
            return self._event

    def cancel(self, reason: str | None = None) -> bool:
        """Cancel once; False when it already was (the first reason is kept)."""
        with CancelSignal._create_lock:
            if self._flag:
                return False
            self.reason = reason
            self._flag = True
            event = self._event
        if event is not None:
            event.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking as soon as the job is cancelled."""
        if self._flag:
            return True
        return self._the_event().wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise ``JobCancelled(reason)`` when cancelled (BullMQ's ``throwIfAborted``)."""
        if self._flag:
            raise JobCancelled(self.reason or "job cancelled")

    throwIfAborted = raise_if_cancelled

    def __bool__(self) -> bool:
        return self._flag

    def __repr__(self) -> str:
        state = f"cancelled reason={self.reason!r}" if self._flag else "not cancelled"
        return f"<CancelSignal {state}>"


class ActiveJob(Job):
    """A job a worker runs: ``update_progress`` also tells the worker's ``progress`` listeners."""

    on_progress: Callable[[Job, Any], None] | None = None

    @classmethod
    def from_reply(
        cls, queue: Queue, job_id: str, raw: dict[str, str], on_progress: Callable[[Job, Any], None]
    ) -> ActiveJob:
        job = cls._from_fields(queue, job_id, raw)  # raw: a fresh dict, the Job's own
        assert isinstance(job, ActiveJob)
        job.on_progress = on_progress
        return job

    def update_progress(self, progress: Any) -> None:
        super().update_progress(progress)
        self.progress = progress
        if self.on_progress is not None:
            self.on_progress(self, progress)

    updateProgress = update_progress


def processor_arguments(processor: Callable[..., Any]) -> tuple[int, bool]:
    """How many positional arguments (1-3) to pass, and whether to pass ``signal=`` by name."""
    try:
        params = list(inspect.signature(processor).parameters.values())
    except (TypeError, ValueError):
        return 1, False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    count = len(positional)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        count = max(count, 2)  # (job, token) as before; a third only when declared
    by_name = any(p.name == "signal" and p.kind is p.KEYWORD_ONLY for p in params)
    return max(1, min(count, 3)), by_name
