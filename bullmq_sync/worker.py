"""A synchronous BullMQ worker: plain-function processors in threads, beside Node workers.

``Worker("emails", send_email, connection=url, concurrency=8)`` starts processing at once
(``autorun``, as in BullMQ) exactly as a BullMQ 6.7 worker does, so Python and Node workers
can share one queue and one job can move between them across attempts.

``Worker`` is a thin face over its parts (``bullmq_sync.worker_parts``): settings, the event
emitter, the fetcher, the slots, the finisher, the lock keeper, the stalled checker and the
runner that calls the processor (in the slot's thread, or in a child process). Worker steps
(a processor moving its own job, rate limits, metrics) live in ``worker_steps.py``; manual
processing (``get_next_job``) in ``worker_parts/manual_fetch.py`` and ``manual.py``.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from . import log, worker_steps
from .attempt_calls import Settings
from .backoff import BackoffStrategy
from .connection import Connection
from .errors import InvalidArgument, RateLimitError, UnrecoverableError
from .job import Job
from .queue import ConnectionLike, Queue
from .worker_parts import manual_fetch
from .worker_parts.emitter import Emitter
from .worker_parts.fetcher import MAX_BLOCK_SECONDS, Fetcher
from .worker_parts.finisher import Finisher
from .worker_parts.locks import LockKeeper
from .worker_parts.runners import Runner, ThreadRunner
from .worker_parts.scheduling import use_batch_scheduling
from .worker_parts.settings import (
    WorkerSettings,
    attempt_settings,
    keep_policy,
    read_settings,
)
from .worker_parts.signals import ActiveJob, CancelSignal, JobCancelled
from .worker_parts.slots import STALLED_LIMIT_MESSAGE, Slots
from .worker_parts.stalled import StalledChecker

__all__ = [
    "MAX_BLOCK_SECONDS",
    "STALLED_LIMIT_MESSAGE",
    "CancelSignal",
    "JobCancelled",
    "Processor",
    "Worker",
    "keep_policy",
]

Processor = Callable[..., Any]
"""``processor(job)``, ``processor(job, token)`` (the job's lock token, as in BullMQ's docs) or
``processor(job, token, signal)`` (a ``CancelSignal``, BullMQ's AbortSignal); a processor that
runs in child processes (``processes=N``) is named by import path ``"module:function"``."""


def _no_processor(job: Job, *args: Any) -> Any:
    """The processor of a manual-processing Worker (``Worker(name, None)``): never run."""
    raise UnrecoverableError("this Worker has no processor (manual processing)")


class Worker:
    """Process the jobs of one BullMQ queue with a plain function, in ``concurrency`` threads.

    ``processor(job)`` returns the job's return value (stored as JSON); raising fails the
    attempt. The worker starts at once unless ``autorun=False`` (then ``start()`` or
    ``run()``). BullMQ's option-dict form works: ``Worker("q", fn, {"concurrency": 4,
    "lockDuration": 60000})``; every WorkerOptions key of BullMQ 6.7 is mapped or refused
    with the reason. Durations are in ms except ``drain_delay`` (seconds, as BullMQ).
    Callbacks: ``on_completed(job, result)``, ``on_failed(job, error)``, ``on_error(error)``,
    ``on_stalled(job_id)``; or ``worker.on("completed", fn)`` (events as BullMQ's).
    ``batch_scheduling`` (default True, Linux): the job threads run under ``SCHED_BATCH``,
    which saves CPU on thread switches (see ``worker_parts.scheduling``).
    """

    RateLimitError = RateLimitError
    """``raise Worker.RateLimitError()`` as in BullMQ's docs (the same class)."""

    def __init__(
        self,
        queue_name: str,
        processor: Processor | str | None = None,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str = "bull",
        concurrency: int = 1,
        lock_duration: int = 30000,
        lock_renew_time: int | None = None,
        stalled_interval: int = 30000,
        max_stalled_count: int = 1,
        skip_stalled_check: bool = False,
        skip_lock_renewal: bool = False,
        drain_delay: float = 5,
        backoff_strategy: BackoffStrategy | None = None,
        remove_on_complete: Any = None,
        remove_on_fail: Any = None,
        name: str | None = None,
        autorun: bool = True,
        limiter: Mapping[str, int] | None = None,
        maximum_rate_limit_delay: int = 30000,
        max_started_attempts: int | None = None,
        metrics: Mapping[str, int] | None = None,
        run_retry_delay: int = 1000,
        processes: int | None = None,
        max_jobs_per_child: int | None = None,
        child_initializer: str | None = None,
        batch_scheduling: bool = True,
        on_completed: Callable[[Job, Any], None] | None = None,
        on_failed: Callable[[Job, BaseException], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_stalled: Callable[[str], None] | None = None,
    ) -> None:
        settings = read_settings(
            opts,
            {
                "connection": connection,
                "prefix": prefix,
                "concurrency": concurrency,
                "lock_duration": lock_duration,
                "lock_renew_time": lock_renew_time,
                "stalled_interval": stalled_interval,
                "max_stalled_count": max_stalled_count,
                "skip_stalled_check": skip_stalled_check,
                "skip_lock_renewal": skip_lock_renewal,
                "drain_delay": drain_delay,
                "backoff_strategy": backoff_strategy,
                "remove_on_complete": remove_on_complete,
                "remove_on_fail": remove_on_fail,
                "name": name,
                "autorun": autorun,
                "limiter": limiter,
                "maximum_rate_limit_delay": maximum_rate_limit_delay,
                "max_started_attempts": max_started_attempts,
                "metrics": metrics,
                "run_retry_delay": run_retry_delay,
                "processes": processes,
                "max_jobs_per_child": max_jobs_per_child,
                "child_initializer": child_initializer,
                "batch_scheduling": batch_scheduling,
            },
        )
        self.manual = processor is None
        """A Worker without a processor is for manual processing (``get_next_job``) only."""
        runner = self._make_runner(_no_processor if processor is None else processor, settings)
        self._runner = runner
        self.settings: WorkerSettings = settings
        self.processor = processor
        slots_count = settings.processes or settings.concurrency
        self.concurrency: int = slots_count
        self.lock_duration = settings.lock_duration
        self.stalled_interval = settings.stalled_interval
        self.max_stalled_count = settings.max_stalled_count
        self.drain_delay = float(settings.drain_delay)
        self.remove_on_complete = settings.remove_on_complete
        self.remove_on_fail = settings.remove_on_fail
        self.name = settings.name
        self.max_started_attempts = settings.max_started_attempts
        self.backoff_strategy = settings.backoff_strategy
        self.metrics = settings.metrics

        conn = settings.connection
        if isinstance(conn, Connection):
            self._owns_connection = False
        else:
            conn = (
                Connection(conn, max_connections=slots_count + 4)
                if isinstance(conn, str) or conn is None
                else Connection.coerce(conn)
            )
            self._owns_connection = True
        self.connection: Connection = conn
        self.queue = Queue(queue_name, connection=conn, prefix=settings.prefix)
        self.id = str(uuid.uuid4())

        self._closing = threading.Event()
        self._closed = threading.Event()
        self._force_closed = threading.Event()
        self._paused = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._started = False
        self._running_blocked = False
        self._state_lock = threading.Lock()
        self._duties: list[threading.Thread] = []

        self._events = Emitter(queue_name, self.id)
        for event, callback in (
            ("completed", on_completed),
            ("failed", on_failed),
            ("error", on_error),
            ("stalled", on_stalled),
        ):
            if callback is not None:
                self._events.on(event, callback)
        self._calls = attempt_settings(settings)
        self._fetcher = Fetcher(
            self.queue,
            conn,
            self._events,
            self._calls,
            worker_id=self.id,
            drain_delay=self.drain_delay,
            maximum_rate_limit_delay=settings.maximum_rate_limit_delay,
            run_retry_delay=settings.run_retry_delay,
            closing=self._closing,
            paused=self._paused,
            make_job=self._make_job,
        )
        thread_start = use_batch_scheduling if settings.batch_scheduling else None
        self._finisher = Finisher(
            self.queue,
            conn,
            self._events,
            self._fetcher,
            self._calls,
            worker_id=self.id,
            share_socket=slots_count > 1,
        )
        self._locks = LockKeeper(
            self.queue,
            conn,
            self._events,
            worker_id=self.id,
            lock_duration=settings.lock_duration,
            renew_every_ms=settings.renew_every_ms,
        )
        self._stalled = StalledChecker(
            self.queue,
            conn,
            self._events,
            max_stalled_count=settings.max_stalled_count,
            interval_ms=settings.stalled_interval,
        )
        self._slots = Slots(
            self.queue,
            self._events,
            self._fetcher,
            self._finisher,
            self._locks,
            runner,
            worker_id=self.id,
            concurrency=slots_count,
            max_started_attempts=settings.max_started_attempts,
            closing=self._closing,
            paused=self._paused,
            unpaused=self._unpaused,
            force_closed=self._force_closed,
            thread_start=thread_start,
        )
        if settings.autorun and not self.manual:  # as BullMQ: no processor, no run
            self.start()

    def _make_runner(self, processor: Processor | str, settings: WorkerSettings) -> Runner:
        if settings.processes is not None:
            from .worker_parts.pool import ProcessRunner

            return ProcessRunner(
                processor,
                settings.processes,
                settings.max_jobs_per_child,
                initializer=settings.child_initializer,
            )
        if isinstance(processor, str):
            raise InvalidArgument(
                "a processor named by import path needs processes=N; pass the function itself"
            )
        if not callable(processor):
            raise InvalidArgument("processor must be a callable taking the job")
        return ThreadRunner(processor)

    def _make_job(self, job_id: str, raw: dict[str, str]) -> Job:
        return ActiveJob.from_reply(self.queue, job_id, raw, self._on_progress)

    def _on_progress(self, job: Job, progress: Any) -> None:
        self._events.emit("progress", job, progress)

    def __repr__(self) -> str:
        return f"<Worker {self.queue.qualified_name!r} concurrency={self.concurrency}>"

    @property
    def processed(self) -> int:
        """Jobs this worker finished (completed or failed for good)."""
        return self._finisher.processed

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of ``close()``."""
        return self._started and not self._closed.is_set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def on(self, event: str, callback: Callable[..., Any]) -> Worker:
        """Add a listener; events and arguments as BullMQ's (``worker_parts.emitter.EVENTS``).

        With ``autorun`` (the default) jobs may run before this call: pass ``on_completed=``
        and friends to the constructor, or ``autorun=False`` then ``start()``, to miss none.
        """
        self._events.on(event, callback)
        return self

    def off(self, event: str, callback: Callable[..., Any]) -> Worker:
        """Remove a listener added with ``on``."""
        self._events.off(event, callback)
        return self

    def start(self) -> Worker:
        """Start processing in background threads and return at once (no-op when running)."""
        with self._state_lock:
            if self._closing.is_set():
                raise InvalidArgument("a closed worker cannot be started again")
            if self.manual:
                raise InvalidArgument("No process function is defined: use get_next_job(token)")
            if self._started:
                return self
            self._started = True
        self._fetcher.open()
        self._events.emit("ready")  # before any job can run, as Node's comes first
        label = f"bullmq-sync-worker-{self.queue.name}"
        self._slots.start(label)
        if not self.settings.skip_lock_renewal:
            self._spawn(f"{label}-locks", self._locks.loop, self._closing)
        if not self.settings.skip_stalled_check:
            self._spawn(f"{label}-stalled", self._stalled.loop, self._closing, self._paused)
        log.event(
            "worker.started", queue=self.queue.name, worker=self.id, concurrency=self.concurrency
        )
        return self

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._duties.append(thread)
        thread.start()

    def run(self, *, install_signal_handlers: bool = False) -> None:
        """Process jobs until ``close()`` (or SIGTERM / SIGINT when asked) and return after it.

        Starts the worker if ``autorun=False``; with autorun it just blocks. Raises
        ``InvalidArgument("Worker is already running")`` when another thread is in ``run()``.
        With ``install_signal_handlers=True`` (main thread only) the first SIGTERM or SIGINT
        starts a graceful close: jobs in flight finish, nothing new is fetched.
        """
        with self._state_lock:
            if self._running_blocked:
                raise InvalidArgument("Worker is already running")
            self._running_blocked = True
        previous: dict[int, Any] = {}
        try:
            if install_signal_handlers:
                if threading.current_thread() is not threading.main_thread():
                    raise InvalidArgument(
                        "signal handlers can only be installed from the main thread"
                    )

                def handle(signum: int, frame: FrameType | None) -> None:
                    log.event("worker.signal", queue=self.queue.name, worker=self.id, signal=signum)
                    closer = threading.Thread(
                        target=self.close, name="bullmq-sync-close", daemon=True
                    )
                    closer.start()

                for sig in (signal.SIGTERM, signal.SIGINT):
                    previous[int(sig)] = signal.signal(sig, handle)
            self.start()
            try:
                while not self._closed.wait(0.5):
                    pass
            except KeyboardInterrupt:  # Ctrl-C without signal handlers: close, then return
                self.close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            with self._state_lock:
                self._running_blocked = False

    def close(self, force: bool = False, *, timeout: float | None = None) -> bool:
        """Stop fetching, let jobs in flight finish, release everything. Idempotent.

        ``close(True)`` is BullMQ's ``close(force)``: do not wait for jobs in flight (their
        results are not stored; each keeps its lock until it expires, then the stalled
        checker hands it to another worker). ``timeout`` seconds bound a graceful close;
        False is returned when it passed with jobs still running.
        """
        if not isinstance(force, bool):
            raise InvalidArgument(
                f"close(force) takes True or False (BullMQ's force), got {force!r}; "
                "use close(timeout=seconds) to bound the wait"
            )
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise InvalidArgument(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if self._closed.is_set():
            return True
        with self._state_lock:
            first = not self._closing.is_set()
            self._closing.set()
        if force:
            self._force_closed.set()
        if first:
            log.event("worker.closing", queue=self.queue.name, worker=self.id, force=force)
            self._events.emit("closing", "closing queue")
        self._fetcher.interrupt()
        deadline = None if timeout is None else time.monotonic() + timeout
        current = threading.current_thread()
        finished = True
        threads = ([] if force else self._slots.threads) + self._duties
        for thread in threads:
            if thread is current:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            finished = finished and not thread.is_alive()
        if first or finished:
            self._slots.runner.close(force or not finished)
            self._fetcher.close()
            self._finisher.close()
            self.queue.close()
            if self._owns_connection:
                self.connection.close()
            self._closed.set()
            log.event(
                "worker.closed", queue=self.queue.name, worker=self.id, processed=self.processed
            )
            self._events.emit("closed")
        return finished

    def __enter__(self) -> Worker:
        if not self.manual:  # a manual-processing Worker only closes on exit
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cancelling running jobs ------------------------------------------------------------

    def cancel_job(self, job_id: str | int, reason: str | None = None) -> bool:
        """Cancel a job this worker runs: its processor's ``CancelSignal`` is set (BullMQ's
        ``cancelJob``). The processor decides: raising fails the attempt as any error does.
        Returns False when this worker does not run that job."""
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgument(f"reason must be a string, got {reason!r}")
        return self._locks.cancel(str(job_id), reason)

    def cancel_all_jobs(self, reason: str | None = None) -> None:
        """Cancel every job this worker runs (BullMQ's ``cancelAllJobs``)."""
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgument(f"reason must be a string, got {reason!r}")
        self._locks.cancel_all(reason)

    cancelJob = cancel_job
    cancelAllJobs = cancel_all_jobs

    # -- pause / resume, rate limit, stalled check -------------------------------------------

    def pause(self, do_not_wait_active: bool = False) -> None:
        """Stop fetching jobs (this worker only); unless asked not to, wait for jobs in flight."""
        if self._paused.is_set():
            return
        self._unpaused.clear()
        self._paused.set()
        self._fetcher.wake()
        if not do_not_wait_active:
            self._slots.wait_until_idle()
        log.event("worker.paused", queue=self.queue.name, worker=self.id)
        self._events.emit("paused")

    def resume(self) -> None:
        """Fetch jobs again after ``pause()`` (starts a worker that was never started)."""
        startable = not (self._started or self._closing.is_set() or self.manual)
        if not self._paused.is_set():
            if startable:
                self.start()
            return
        self._paused.clear()
        self._unpaused.set()
        if startable:
            self.start()
        log.event("worker.resumed", queue=self.queue.name, worker=self.id)
        self._events.emit("resumed")

    def is_paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._paused.is_set()

    def is_running(self) -> bool:
        """True between ``start()`` and the end of ``close()``."""
        return self.running

    def rate_limit(self, expire_ms: int) -> None:
        """Rate-limit the queue for ``expire_ms`` ms for every worker (BullMQ's rateLimit)."""
        worker_steps.rate_limit(self.queue, expire_ms)

    def check_stalled(self) -> list[str]:
        """Run one stalled-job check now (it does nothing if any checker ran this interval)."""
        return self._stalled.check()

    isPaused = is_paused
    isRunning = is_running
    rateLimit = rate_limit

    # -- manual processing (manual.py, worker_parts/manual_fetch.py) ---------------------

    def get_next_job(self, token: str, block: bool | Mapping[str, Any] = True) -> Job | None:
        """Take the next job locked with ``token`` (BullMQ's getNextJob; no processor).

        With ``block`` (or ``{"block": True}``) wait up to ``drain_delay`` s for one.
        """
        return manual_fetch.get_next_job(self, token, block)

    getNextJob = get_next_job

    def manual_settings(self) -> Settings:
        """The options a job taken by hand is finished with (lock, limiter, keep, metrics,
        backoff), as Node's job reads them from its worker."""
        return self._calls
