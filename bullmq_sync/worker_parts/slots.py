"""``concurrency`` slot threads: each takes a job, runs the processor, finishes the job.

A slot keeps the job handed back by a finishing call (finish + fetch is one script call)
and only goes back to the fetcher when none came. Pausing stops fetching; ``wait_until_idle``
lets ``pause()`` wait for jobs in flight.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import log, schedulers
from ..errors import (
    RATE_LIMIT_MESSAGE,
    BullMQSyncError,
    DelayedError,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
    WaitingError,
)
from ..worker_steps import move_to_wait

if TYPE_CHECKING:
    from ..job import Job
    from ..queue import Queue
    from .emitter import Emitter
    from .fetcher import Fetcher
    from .finisher import Finisher
    from .locks import LockKeeper
    from .runners import Runner

LEFT_ALONE = (DelayedError, WaitingChildrenError, WaitingError)
"""The worker leaves the job where the processor put it (no attempt, no failed event)."""

STALLED_LIMIT_MESSAGE = "job started more than allowable limit"


class Slots:
    """The threads that process jobs, and the count of jobs in flight."""

    def __init__(
        self,
        queue: Queue,
        emitter: Emitter,
        fetcher: Fetcher,
        finisher: Finisher,
        locks: LockKeeper,
        runner: Runner,
        *,
        worker_id: str,
        concurrency: int,
        max_started_attempts: int | None,
        closing: threading.Event,
        paused: threading.Event,
        unpaused: threading.Event,
        force_closed: threading.Event,
        thread_start: Callable[[], object] | None = None,
    ) -> None:
        self._queue = queue
        self._emitter = emitter
        self._fetcher = fetcher
        self._finisher = finisher
        self._locks = locks
        self.runner = runner
        self._worker_id = worker_id
        self._concurrency = concurrency
        self._max_started_attempts = max_started_attempts
        self._closing = closing
        self._paused = paused
        self._unpaused = unpaused
        self._force_closed = force_closed
        self._thread_start = thread_start
        self._busy = 0
        self._idle = threading.Condition()
        self.threads: list[threading.Thread] = []

    def start(self, label: str) -> None:
        self.runner.start()
        for index in range(self._concurrency):
            thread = threading.Thread(target=self._loop, name=f"{label}-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()

    # -- jobs in flight ------------------------------------------------------------------------

    def _hold(self, delta: int) -> None:
        with self._idle:
            self._busy += delta
            self._idle.notify_all()

    @property
    def busy(self) -> int:
        return self._busy

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Wait until no fetch is in flight and no slot holds a job (but the caller's own)."""
        with self._fetcher.lock:
            pass
        own = 1 if threading.current_thread() in self.threads else 0
        with self._idle:
            return self._idle.wait_for(
                lambda: self._busy <= own or self._force_closed.is_set(), timeout
            )

    def _should_fetch_next(self) -> bool:
        return not (self._closing.is_set() or self._paused.is_set())

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        if self._thread_start is not None:
            self._thread_start()
        work: tuple[Job, str] | None = None
        while not self._closing.is_set() or work is not None:
            try:
                if work is None:
                    if self._paused.is_set():  # a paused worker fetches nothing
                        self._unpaused.wait(0.25)
                        continue
                    work = self._fetcher.acquire(self._hold)
                    if work is None:
                        continue
                work = self.process(*work)
                if work is None:
                    self._hold(-1)
            except Exception as exc:  # noqa: BLE001 - a worker thread must survive anything
                if work is not None:
                    self._hold(-1)
                work = None
                self._emitter.error(exc)
                self._closing.wait(1.0)

    def _schedule_next_iteration(self, job: Job) -> None:
        """A fetched scheduler iteration: create the next one (errors reported, not raised)."""
        if not job.repeat_job_key:
            return
        try:
            schedulers.after_fetch(self._queue, job.id, job.raw)
        except Exception as exc:  # noqa: BLE001 - as BullMQ: report, still process the job
            self._emitter.error(exc)

    def process(self, job: Job, token: str) -> tuple[Job, str] | None:
        """Run the processor on one job, finish it; returns the next job if one came back."""
        signal = self._locks.track(job.id, token)
        self._schedule_next_iteration(job)
        log.transition(
            "job.active",
            queue=self._queue.name,
            job_id=job.id,
            from_state="waiting",
            to_state="active",
            worker=self._worker_id,
            attempts_started=job.attempts_started,
        )
        self._emitter.emit("active", job)
        error: BaseException | None = None
        result: Any = None
        encoded = "null"
        try:
            if job.deferred_failure:
                raise UnrecoverableError(job.deferred_failure)
            if self._max_started_attempts and self._max_started_attempts < job.attempts_started:
                raise UnrecoverableError(STALLED_LIMIT_MESSAGE)
            result = self.runner.run(job, token, signal)
            encoded = "null" if result is None else json.dumps(result)
        except Exception as exc:  # noqa: BLE001 - any processor failure fails the attempt
            error = exc
        finally:
            self._locks.untrack(job.id)
        if self._force_closed.is_set():
            # As BullMQ after close(force): the job keeps its lock until it expires, then
            # the stalled checker hands it to another worker.
            log.event(
                "job.abandoned", queue=self._queue.name, job_id=job.id, worker=self._worker_id
            )
            return None
        fetch_next = self._should_fetch_next()
        if error is None:
            return self._finisher.complete(job, token, result, encoded, fetch_next)
        if isinstance(error, LEFT_ALONE):
            log.event(
                "job.left_by_processor",
                queue=self._queue.name,
                job_id=job.id,
                error=type(error).__name__,
            )
            return None
        if isinstance(error, RateLimitError) or str(error) == RATE_LIMIT_MESSAGE:
            self._requeue_limited(job, token)
            return None
        return self._finisher.fail(job, token, error, fetch_next)

    def _requeue_limited(self, job: Job, token: str) -> None:
        """A processor raised RateLimitError: job back to wait, fetching pauses for the TTL."""
        try:
            ttl = move_to_wait(job.queue, job.id, token, priority=job.priority)
        except BullMQSyncError as exc:
            self._emitter.error(exc)
            return
        self._fetcher.limit_for(ttl)
