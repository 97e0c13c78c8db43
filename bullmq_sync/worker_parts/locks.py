"""Jobs a worker holds: their lock tokens, periodic lock renewal, and cancellation signals."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .. import log
from .signals import CancelSignal

if TYPE_CHECKING:
    from ..connection import Connection
    from ..queue import Queue
    from .emitter import Emitter


class LockKeeper:
    """Tracks running jobs; a thread renews their locks every ``renew_every_ms``."""

    def __init__(
        self,
        queue: Queue,
        connection: Connection,
        emitter: Emitter,
        *,
        worker_id: str,
        lock_duration: int,
        renew_every_ms: int,
    ) -> None:
        self._queue = queue
        self._connection = connection
        self._emitter = emitter
        self._worker_id = worker_id
        self._lock_duration = lock_duration
        self._period = renew_every_ms / 1000
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, CancelSignal]] = {}

    def track(self, job_id: str, token: str) -> CancelSignal:
        signal = CancelSignal()
        with self._lock:
            self._held[job_id] = (token, signal)
        return signal

    def untrack(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)

    def held(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(job_id, token) for job_id, (token, _) in self._held.items()]

    def cancel(self, job_id: str, reason: str | None = None) -> bool:
        """Cancel one running job's signal; False when this worker does not run that job."""
        with self._lock:
            tracked = self._held.get(str(job_id))
        if tracked is None:
            return False
        tracked[1].cancel(reason)
        log.event(
            "job.cancel_requested",
            queue=self._queue.name,
            job_id=str(job_id),
            worker=self._worker_id,
        )
        return True

    def cancel_all(self, reason: str | None = None) -> None:
        with self._lock:
            held = list(self._held)
        for job_id in held:
            self.cancel(job_id, reason)

    def renew_once(self) -> list[str]:
        """Extend every held lock now; returns the ids whose lock was lost."""
        held = self.held()
        if not held:
            return []
        keys = self._queue.keys
        args: list[Any] = [keys.base, self._lock_duration]
        for job_id, token in held:
            args += [job_id, token]
        lost = [
            str(job_id)
            for job_id in (self._connection.run_script("extendLocks", (keys.stalled,), args) or [])
        ]
        for job_id in lost:
            log.event(
                "job.lock_lost", queue=self._queue.name, job_id=job_id, worker=self._worker_id
            )
        if lost:
            self._emitter.emit("lockRenewalFailed", lost)
        renewed = [job_id for job_id, _ in held if job_id not in lost]
        if renewed and self._emitter.has("locksRenewed"):
            self._emitter.emit("locksRenewed", {"count": len(renewed), "jobIds": renewed})
        return lost

    def loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._period):
            try:
                self.renew_once()
            except Exception as exc:  # noqa: BLE001 - keep renewing
                self._emitter.error(exc)
