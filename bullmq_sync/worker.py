"""A synchronous BullMQ worker: plain-function processors in threads, beside Node workers.

``Worker("emails", send_email, connection=url, concurrency=8).run()`` processes jobs exactly
as a BullMQ 6.7 worker does, so Python and Node workers can share one queue and one job can
move between them across attempts:

* fetching: one thread at a time takes jobs (``fetchJob``: due delayed jobs promoted, rate
  limit, paused / maxed queues respected, the job locked with a ``<uuid>:<n>`` token); when
  nothing is ready that thread blocks on ``BZPOPMIN <marker>`` on a dedicated connection,
  so Node producers wake it and our retries wake Node workers;
* finishing a job and taking the next one is ONE script call (``finishJob``), as in BullMQ;
* failures: ``failedReason`` = the exception's message, ``stacktrace`` = formatted
  tracebacks (``stackTraceLimit`` honoured), attempts and backoff (fixed, exponential,
  jitter, a custom ``backoff_strategy``) -> ``delayActiveJob`` or ``retryActiveJob``, else
  failed for good; ``UnrecoverableError`` and a job's ``defa`` fail it at once;
* a background thread renews the locks of running jobs every ``lock_duration / 2``, and
  another runs the stalled-job check every ``stalled_interval`` (compatible with Node's).
* worker steps (worker_steps.py): a processor may move its own job (``move_to_delayed``,
  ``move_to_waiting_children``, ``move_to_wait``) and raise ``DelayedError`` /
  ``WaitingChildrenError`` / ``WaitingError`` (the job is left alone), or raise
  ``RateLimitError`` (job back to wait, fetching waits for the limiter); ``pause()`` /
  ``resume()`` this worker; ``metrics={"maxDataPoints": n}`` as BullMQ.

Every transition is logged through ``log.transition`` (``job.active``, ``job.completed``,
``job.failed``, ``job.retrying``, ``job.delayed``, ``job.stalled``).
"""

from __future__ import annotations

import inspect
import json
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from . import log, worker_steps
from .backoff import BackoffStrategy, retry_delay
from .connection import BlockingReader, Connection
from .errors import (
    RATE_LIMIT_MESSAGE,
    BullMQSyncError,
    DelayedError,
    InvalidArgument,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
    WaitingError,
    job_error,
)
from .job import OUTCOME_TTL_MS, Job
from .queue import ConnectionLike, Queue
from .workers_list import worker_client_name

# -- worker steps: errors a processor raises after moving its own job (worker_steps.py) ---
_LEFT_ALONE = (DelayedError, WaitingChildrenError, WaitingError)
"""The worker leaves the job where the processor put it (no attempt, no failed event)."""

Processor = Callable[..., Any]
"""``processor(job)``, or ``processor(job, token)`` as in BullMQ's docs (the job's lock token)."""


def _takes_token(processor: Callable[..., Any]) -> bool:
    """True when the processor accepts a second positional argument (BullMQ's job token)."""
    try:
        params = list(inspect.signature(processor).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _no_processor(job: Job, *args: Any) -> Any:
    """The processor of a manual-processing Worker (``Worker(name, None)``): never run."""
    raise UnrecoverableError("this Worker has no processor (manual processing)")


MAX_BLOCK_SECONDS = 10.0

MAX_RATE_LIMIT_DELAY_MS = 30_000
"""Longest a rate-limited worker waits before looking again (BullMQ's maximumRateLimitDelay)."""
"""Redis-side ceiling of one BZPOPMIN wait, as BullMQ's ``maximumBlockTimeout``."""

STALLED_LIMIT_MESSAGE = "job started more than allowable limit"

_OPTION_NAMES = {
    "connection": "connection",
    "prefix": "prefix",
    "concurrency": "concurrency",
    "lockDuration": "lock_duration",
    "stalledInterval": "stalled_interval",
    "maxStalledCount": "max_stalled_count",
    "drainDelay": "drain_delay",
    "removeOnComplete": "remove_on_complete",
    "removeOnFail": "remove_on_fail",
    "name": "name",
    "autorun": "autorun",
    "limiter": "limiter",
    "maxStartedAttempts": "max_started_attempts",
    "metrics": "metrics",
}

_EVENTS = ("completed", "failed", "error", "stalled", "active", "paused", "resumed")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=False))


def keep_policy(value: Any) -> tuple[str, str, str]:
    """A removeOnComplete / removeOnFail value as (count, age, limit) script arguments.

    True -> delete at once (count 0); False / None -> keep all; n -> keep the newest n;
    ``{"count": n, "age": seconds, "limit": m}`` as BullMQ's KeepJobs.
    """
    if value is None or value is False:
        return ("", "", "")
    if value is True:
        return ("0", "", "")
    if isinstance(value, (int, float)):
        return (str(int(value)), "", "")
    if isinstance(value, Mapping):
        count, age, limit = value.get("count"), value.get("age"), value.get("limit")
        return (
            "" if count is None else str(int(count)),
            "" if age is None else str(age),
            "" if limit is None else str(int(limit)),
        )
    raise InvalidArgument(f"a keep policy must be a bool, a number or a dict, got {value!r}")


class Worker:
    """Process the jobs of one BullMQ queue with a plain function, in ``concurrency`` threads.

    ``processor(job)`` returns the job's return value (stored as JSON); raising fails the
    attempt. BullMQ's option-dict form works: ``Worker("q", fn, {"concurrency": 4,
    "lockDuration": 60000})``. Durations are in ms except ``drain_delay`` (seconds, as
    BullMQ). Callbacks: ``on_completed(job, result)``, ``on_failed(job, error)``,
    ``on_error(error)``, ``on_stalled(job_id)``; or ``worker.on("completed", fn)``.
    """

    def __init__(
        self,
        queue_name: str,
        processor: Processor | None = None,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str = "bull",
        concurrency: int = 1,
        lock_duration: int = 30000,
        stalled_interval: int = 30000,
        max_stalled_count: int = 1,
        drain_delay: float = 5,
        backoff_strategy: BackoffStrategy | None = None,
        remove_on_complete: Any = None,
        remove_on_fail: Any = None,
        name: str | None = None,
        autorun: bool = False,
        limiter: Mapping[str, int] | None = None,
        max_started_attempts: int | None = None,
        metrics: Mapping[str, int] | None = None,
        on_completed: Callable[[Job, Any], None] | None = None,
        on_failed: Callable[[Job, BaseException], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_stalled: Callable[[str], None] | None = None,
    ) -> None:
        settings: dict[str, Any] = {
            "connection": connection,
            "prefix": prefix,
            "concurrency": concurrency,
            "lock_duration": lock_duration,
            "stalled_interval": stalled_interval,
            "max_stalled_count": max_stalled_count,
            "drain_delay": drain_delay,
            "remove_on_complete": remove_on_complete,
            "remove_on_fail": remove_on_fail,
            "name": name,
            "autorun": autorun,
            "limiter": limiter,
            "max_started_attempts": max_started_attempts,
            "metrics": metrics,
        }
        for key, value in (opts or {}).items():
            if key == "settings" and isinstance(value, Mapping):
                strategy = value.get("backoffStrategy")
                if strategy is not None:
                    backoff_strategy = strategy
                continue
            target = _OPTION_NAMES.get(key, key if key in settings else None)
            if target is None:
                raise InvalidArgument(f"unsupported Worker option {key!r}")
            settings[target] = value
        if processor is not None and not callable(processor):  # None: manual processing
            raise InvalidArgument("processor must be a callable taking the job")
        self._check_settings(settings)
        if backoff_strategy is not None and not callable(backoff_strategy):
            raise InvalidArgument("backoff_strategy must be callable")

        self.processor: Processor = processor if processor is not None else _no_processor
        self._pass_token = processor is not None and _takes_token(processor)
        self.concurrency: int = int(settings["concurrency"])
        self.lock_duration: int = int(settings["lock_duration"])
        self.stalled_interval: int = int(settings["stalled_interval"])
        self.max_stalled_count: int = int(settings["max_stalled_count"])
        self.drain_delay: float = float(settings["drain_delay"])
        self.remove_on_complete = settings["remove_on_complete"]
        self.remove_on_fail = settings["remove_on_fail"]
        keep_policy(self.remove_on_complete)
        keep_policy(self.remove_on_fail)
        self.name: str | None = settings["name"]
        self.max_started_attempts: int | None = settings["max_started_attempts"]
        self.backoff_strategy = backoff_strategy
        limits = settings["limiter"] or {}
        self._limit_max = str(limits["max"]) if limits.get("max") is not None else ""
        self._limit_window = str(limits["duration"]) if limits.get("duration") is not None else ""
        # -- worker steps: metrics option, client-side pause and manual rate limit ----------
        self.metrics = settings["metrics"]
        self._max_metrics = worker_steps.max_data_points(self.metrics)
        self._paused = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._limit_until = 0.0
        self._busy = 0
        self._idle = threading.Condition()

        conn = settings["connection"]
        if not isinstance(conn, Connection):
            conn = (
                Connection(conn, max_connections=self.concurrency + 4)
                if isinstance(conn, str) or conn is None
                else Connection.coerce(conn)
            )
            self._owns_connection = True
        else:
            self._owns_connection = False
        self.connection: Connection = conn
        self.queue = Queue(queue_name, connection=conn, prefix=settings["prefix"])
        self.id = str(uuid.uuid4())
        self._tokens = 0
        self._token_lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._running_lock = threading.Lock()
        self._running: dict[str, str] = {}
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._started = False
        self._threads: list[threading.Thread] = []
        self._slots: list[threading.Thread] = []
        self._blocker: BlockingReader | None = None
        self._listeners: dict[str, list[Callable[..., None]]] = {event: [] for event in _EVENTS}
        for event, callback in (
            ("completed", on_completed),
            ("failed", on_failed),
            ("error", on_error),
            ("stalled", on_stalled),
        ):
            if callback is not None:
                self._listeners[event].append(callback)
        self.processed = 0
        """Jobs this worker finished (completed or failed for good)."""
        if settings["autorun"] and processor is not None:  # as BullMQ: no processor, no run
            self.start()

    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        def positive_int(key: str, minimum: int) -> None:
            value = settings[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidArgument(f"{key} must be an integer >= {minimum}, got {value!r}")

        positive_int("concurrency", 1)
        positive_int("lock_duration", 1)
        positive_int("stalled_interval", 1)
        positive_int("max_stalled_count", 0)
        drain = settings["drain_delay"]
        if isinstance(drain, bool) or not isinstance(drain, (int, float)) or drain <= 0:
            raise InvalidArgument(f"drain_delay must be a positive number of seconds: {drain!r}")
        started = settings["max_started_attempts"]
        if started is not None and (not isinstance(started, int) or started < 0):
            raise InvalidArgument("max_started_attempts must be an integer >= 0")
        limiter = settings["limiter"]
        if limiter is not None and (not isinstance(limiter, Mapping) or "max" not in limiter):
            raise InvalidArgument("limiter must be a dict like {'max': 10, 'duration': 1000}")

    def __repr__(self) -> str:
        return f"<Worker {self.queue.qualified_name!r} concurrency={self.concurrency}>"

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of ``close()``."""
        return self._started and not self._closed.is_set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def on(self, event: str, callback: Callable[..., None]) -> Worker:
        """Add a listener: ``completed``(job, result), ``failed``(job, error), ``error``(error),
        ``stalled``(job_id), ``active``(job)."""
        if event not in self._listeners:
            raise InvalidArgument(f"unknown worker event {event!r}; expected one of {_EVENTS}")
        self._listeners[event].append(callback)
        return self

    def start(self) -> Worker:
        """Start processing in background threads and return at once."""
        if self._closing.is_set():
            raise InvalidArgument("a closed worker cannot be started again")
        if self.processor is _no_processor:
            raise InvalidArgument("No process function is defined: use get_next_job(token)")
        if self._started:
            return self
        self._started = True
        self._blocker = self.connection.blocking_reader(
            self.queue.keys.marker,
            socket_timeout=MAX_BLOCK_SECONDS + 5,
            client_name=worker_client_name(self.queue.keys, self.name),
        )
        label = f"bullmq-sync-worker-{self.queue.name}"
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._slot_loop, name=f"{label}-{index}", daemon=True)
            self._slots.append(thread)
        self._threads = [
            threading.Thread(target=self._renew_loop, name=f"{label}-locks", daemon=True),
            threading.Thread(target=self._stalled_loop, name=f"{label}-stalled", daemon=True),
        ]
        for thread in self._slots + self._threads:
            thread.start()
        log.event(
            "worker.started", queue=self.queue.name, worker=self.id, concurrency=self.concurrency
        )
        return self

    def run(self, *, install_signal_handlers: bool = False) -> None:
        """Process jobs until ``close()`` (or SIGTERM / SIGINT when asked) and return after it.

        With ``install_signal_handlers=True`` (main thread only) the first SIGTERM or SIGINT
        starts a graceful close: jobs in flight finish, nothing new is fetched.
        """
        previous: dict[int, Any] = {}
        if install_signal_handlers:
            if threading.current_thread() is not threading.main_thread():
                raise InvalidArgument("signal handlers can only be installed from the main thread")

            def handle(signum: int, frame: FrameType | None) -> None:
                log.event("worker.signal", queue=self.queue.name, worker=self.id, signal=signum)
                closer = threading.Thread(target=self.close, name="bullmq-sync-close", daemon=True)
                closer.start()

            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[int(sig)] = signal.signal(sig, handle)
        try:
            self.start()
            while not self._closed.wait(0.5):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def close(self, timeout: float | None = None) -> bool:
        """Stop fetching, let jobs in flight finish, release everything. Idempotent.

        Returns False when ``timeout`` seconds passed with jobs still running (they keep their
        lock until it expires, then the stalled checker hands them to another worker).
        """
        if self._closed.is_set():
            return True
        first = not self._closing.is_set()
        self._closing.set()
        if first:
            log.event("worker.closing", queue=self.queue.name, worker=self.id)
        self._interrupt_block()
        deadline = None if timeout is None else time.monotonic() + timeout
        current = threading.current_thread()
        finished = True
        for thread in self._slots + self._threads:
            if thread is current:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            finished = finished and not thread.is_alive()
        if first or finished:
            if self._blocker is not None:
                self._blocker.close()
            self.queue.close()
            if self._owns_connection:
                self.connection.close()
            self._closed.set()
            log.event(
                "worker.closed", queue=self.queue.name, worker=self.id, processed=self.processed
            )
        return finished

    def __enter__(self) -> Worker:
        if self.processor is not _no_processor:  # a manual-processing Worker closes on exit
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- manual processing (manual.py) --------------------------------------------------

    def get_next_job(self, token: str, block: bool | Mapping[str, Any] = True) -> Job | None:
        """Take the next job locked with ``token`` (BullMQ's getNextJob; no processor).

        With ``block`` (or ``{"block": True}``) wait up to ``drain_delay`` s for one.
        """
        from . import manual

        return manual.get_next_job(self, token, block)

    getNextJob = get_next_job

    # ---- end of manual processing ----------------------------------------------------------

    # -- worker steps: pause / resume, manual rate limit (worker_steps.py) ----------------

    RateLimitError = RateLimitError
    """``raise Worker.RateLimitError()`` as in BullMQ's docs (the same class)."""

    def pause(self, do_not_wait_active: bool = False) -> None:
        """Stop fetching jobs (this worker only); unless asked not to, wait for jobs in flight."""
        if self._paused.is_set():
            return
        self._unpaused.clear()
        self._paused.set()
        self._wake_fetcher()
        if not do_not_wait_active:
            self._wait_until_idle()
        log.event("worker.paused", queue=self.queue.name, worker=self.id)
        self._emit("paused")

    def resume(self) -> None:
        """Fetch jobs again after ``pause()`` (starts a worker that was never started)."""
        manual = self.processor is _no_processor  # manual processing: nothing to start
        if not self._paused.is_set():
            if not self._started and not self._closing.is_set() and not manual:
                self.start()
            return
        self._paused.clear()
        self._unpaused.set()
        if not self._started and not self._closing.is_set() and not manual:
            self.start()
        log.event("worker.resumed", queue=self.queue.name, worker=self.id)
        self._emit("resumed")

    def is_paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._paused.is_set()

    def is_running(self) -> bool:
        """True between ``start()`` and the end of ``close()``."""
        return self.running

    def rate_limit(self, expire_ms: int) -> None:
        """Rate-limit the queue for ``expire_ms`` ms for every worker (BullMQ's rateLimit)."""
        worker_steps.rate_limit(self.queue, expire_ms)

    isPaused = is_paused
    isRunning = is_running
    rateLimit = rate_limit

    def _wake_fetcher(self) -> None:
        """End a pending marker wait now, with a fresh blocking socket for the next one."""
        old = self._blocker
        if old is None or self._closing.is_set():
            return
        self._blocker = self.connection.blocking_reader(
            self.queue.keys.marker,
            socket_timeout=MAX_BLOCK_SECONDS + 5,
            client_name=worker_client_name(self.queue.keys, self.name),
        )
        old.close()

    def _wait_until_idle(self) -> None:
        """Wait until no fetch is in flight and no slot holds a job (but the caller's own)."""
        with self._fetch_lock:
            pass
        own = 1 if threading.current_thread() in self._slots else 0
        with self._idle:
            self._idle.wait_for(lambda: self._busy <= own or self._closing.is_set())

    def _hold(self, delta: int) -> None:
        with self._idle:
            self._busy += delta
            self._idle.notify_all()

    def _should_fetch_next(self) -> bool:
        return not (self._closing.is_set() or self._paused.is_set())

    def _requeue_limited(self, job: Job, token: str) -> None:
        """A processor raised RateLimitError: job back to wait, fetching pauses for the TTL."""
        try:
            ttl = worker_steps.move_to_wait(job, token)
        except BullMQSyncError as exc:
            self._emit_error(exc)
            return
        wait = min(ttl, MAX_RATE_LIMIT_DELAY_MS)
        self._limit_until = _now_ms() + wait if wait > 0 else 0.0

    def _rate_limit_wait(self) -> bool:
        """While a manual rate limit runs, sleep a little; True when it did."""
        left = self._limit_until - _now_ms()
        if left <= 0:
            return False
        self._closing.wait(min(left / 1000, 0.25))
        return True

    # -- end of worker steps: pause / resume, manual rate limit ---------------------------

    # -- fetching -------------------------------------------------------------------------

    def _next_token(self) -> str:
        with self._token_lock:
            self._tokens += 1
            return f"{self.id}:{self._tokens}"

    def _slot_loop(self) -> None:
        work: tuple[Job, str] | None = None
        while not self._closing.is_set():
            try:
                if work is None:
                    if self._paused.is_set():  # worker steps: a paused worker fetches nothing
                        self._unpaused.wait(0.25)
                        continue
                    work = self._acquire()
                    if work is None:
                        continue
                work = self._process(*work)
                if work is None:
                    self._hold(-1)
            except Exception as exc:  # noqa: BLE001 - a worker thread must survive anything
                if work is not None:
                    self._hold(-1)
                work = None
                self._emit_error(exc)
                self._closing.wait(1.0)

    def _acquire(self) -> tuple[Job, str] | None:
        """Wait for a job; one thread at a time fetches or blocks on the marker."""
        while not self._closing.is_set():
            if not self._fetch_lock.acquire(timeout=0.25):
                continue
            try:
                return self._fetch_or_block()
            finally:
                self._fetch_lock.release()
        return None

    def _fetch_or_block(self) -> tuple[Job, str] | None:
        while not self._closing.is_set():
            if self._paused.is_set():  # worker steps: pause / manual rate limit
                return None
            if self._rate_limit_wait():
                continue
            token = self._next_token()
            keys = self.queue.keys
            try:
                reply = self.connection.run_script(
                    "fetchJob",
                    (
                        keys.wait,
                        keys.active,
                        keys.prioritized,
                        keys.events,
                        keys.limiter,
                        keys.delayed,
                        keys.meta,
                        keys.pc,
                        keys.marker,
                    ),
                    (
                        keys.base,
                        _now_ms(),
                        token,
                        self.lock_duration,
                        self._limit_max,
                        self._limit_window,
                        self.name or "",
                    ),
                )
            except BullMQSyncError as exc:
                self._emit_error(exc)
                self._closing.wait(1.0)
                continue
            job = self._job_from_reply(reply)
            if job is not None:
                self._hold(1)
                return job, token
            rate_limited, due = int(reply[2]), float(reply[3])
            if rate_limited > 0:
                self._closing.wait(min(rate_limited, MAX_RATE_LIMIT_DELAY_MS) / 1000)
                continue
            block = min(self.drain_delay, MAX_BLOCK_SECONDS)
            if due > 0:
                block = min(max((due - _now_ms()) / 1000, 0.001), MAX_BLOCK_SECONDS)
            self._wait_for_marker(block)
        return None

    def _wait_for_marker(self, seconds: float) -> None:
        """Block on the queue's marker (BZPOPMIN), as BullMQ workers do, until woken."""
        blocker = self._blocker
        assert blocker is not None
        try:
            blocker.call("BZPOPMIN", self.queue.keys.marker, seconds)
        except BullMQSyncError as exc:
            if self._closing.is_set():
                return
            self._emit_error(exc)
            self._closing.wait(0.5)

    def _interrupt_block(self) -> None:
        """Wake the thread blocked on the marker."""
        if self._blocker is not None:
            self._blocker.interrupt()

    def _job_from_reply(self, reply: Any) -> Job | None:
        if isinstance(reply, list) and reply and isinstance(reply[0], list):
            return Job.from_hash(self.queue, str(reply[1]), _pairs(reply[0]))
        return None

    # -- processing -----------------------------------------------------------------------

    # ---- job schedulers (see bullmq_sync/schedulers.py) ----------------------------------

    def _schedule_next_iteration(self, job: Job) -> None:
        """A fetched scheduler iteration: create the next one (errors reported, not raised)."""
        if not job.repeat_job_key:
            return
        from . import schedulers

        try:
            schedulers.after_fetch(self.queue, job)
        except Exception as exc:  # noqa: BLE001 - as BullMQ: report, still process the job
            self._emit_error(exc)

    # ---- end of job schedulers -----------------------------------------------------------

    def _process(self, job: Job, token: str) -> tuple[Job, str] | None:
        """Run the processor on one job, finish it; returns the next job if one came back."""
        with self._running_lock:
            self._running[job.id] = token
        # ---- job schedulers: create the next iteration, as BullMQ's worker does --------
        self._schedule_next_iteration(job)
        # ---- end of job schedulers --------------------------------------------------------
        log.transition(
            "job.active",
            queue=self.queue.name,
            job_id=job.id,
            from_state="waiting",
            to_state="active",
            worker=self.id,
            attempts_started=job.attempts_started,
        )
        self._emit("active", job)
        error: BaseException | None = None
        result: Any = None
        encoded = "null"
        try:
            if job.deferred_failure:
                raise UnrecoverableError(job.deferred_failure)
            if self.max_started_attempts and self.max_started_attempts < job.attempts_started:
                raise UnrecoverableError(STALLED_LIMIT_MESSAGE)
            result = self.processor(job, token) if self._pass_token else self.processor(job)
            encoded = json.dumps(result)
        except Exception as exc:  # noqa: BLE001 - any processor failure fails the attempt
            error = exc
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
        fetch_next = self._should_fetch_next()
        if error is None:
            return self._complete(job, token, result, encoded, fetch_next)
        # -- worker steps: the processor moved its own job, or hit a rate limit ------------
        if isinstance(error, _LEFT_ALONE):
            log.event(
                "job.left_by_processor",
                queue=self.queue.name,
                job_id=job.id,
                error=type(error).__name__,
            )
            return None
        if isinstance(error, RateLimitError) or str(error) == RATE_LIMIT_MESSAGE:
            self._requeue_limited(job, token)
            return None
        return self._fail(job, token, error, fetch_next)

    def _finish_args(
        self, job: Job, token: str, target: str, value: str, stack: str, fetch_next: bool
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        keys = self.queue.keys
        option = "removeOnComplete" if target == "completed" else "removeOnFail"
        policy = job.opts.get(option)
        if policy is None:
            policy = self.remove_on_complete if target == "completed" else self.remove_on_fail
        count, age, limit = keep_policy(policy)
        attempts = job.opts.get("attempts") or 0
        return (
            (
                keys.wait,
                keys.active,
                keys.prioritized,
                keys.events,
                keys.stalled,
                keys.limiter,
                keys.delayed,
                keys.meta,
                keys.pc,
                keys.state(target),
                keys.job(job.id),
                keys.marker,
                keys.op(self.queue.next_token()),
            )
            + ((keys.metrics(target),) if self._max_metrics else ()),
            (
                job.id,
                _now_ms(),
                target,
                value,
                keys.base,
                token,
                count,
                age,
                limit,
                int(attempts),
                stack,
                "1" if fetch_next else "0",
                self.lock_duration,
                self._limit_max,
                self._limit_window,
                self.name or "",
                OUTCOME_TTL_MS,
            )
            # -- worker steps: metrics={"maxDataPoints": n} (finishJob KEYS[14] / ARGV[18])
            + ((self._max_metrics,) if self._max_metrics else ()),
        )

    def _complete(
        self, job: Job, token: str, result: Any, encoded: str, fetch_next: bool
    ) -> tuple[Job, str] | None:
        reply = self._finish(job, token, "completed", encoded, "", fetch_next)
        if isinstance(reply, int) and reply < 0:
            if reply == -9:  # a failed child (failParentOnFailure): BullMQ fails the parent
                error = job_error(
                    reply, queue=self.queue.name, job_id=job.id, command="moveToFinished"
                )
                return self._fail(job, token, UnrecoverableError(str(error)), fetch_next)
            self._refused(job, reply, "moveToFinished")
            return None
        job.return_value = result
        self._emit("completed", job, result)
        return self._next_from(reply, token)

    def _finish(
        self, job: Job, token: str, target: str, value: str, stack: str, fetch_next: bool
    ) -> Any:
        """One finishJob call; on success the job's fields are updated and the move logged.

        Returns the script's reply: a negative code (nothing changed), or 0 / the next job.
        """
        keys, args = self._finish_args(job, token, target, value, stack, fetch_next)
        reply = self.connection.run_script("finishJob", keys, args)
        if isinstance(reply, int) and reply < 0:
            return reply
        job.finished_on = int(args[1])
        job.attempts_made += 1
        with self._running_lock:
            self.processed += 1
        log.transition(
            f"job.{target}",
            queue=self.queue.name,
            job_id=job.id,
            from_state="active",
            to_state=target,
            attempts_made=job.attempts_made,
        )
        return reply

    def _fail(
        self, job: Job, token: str, error: BaseException, fetch_next: bool
    ) -> tuple[Job, str] | None:
        message = str(error)
        stack = list(job.stacktrace)
        stack.append("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        limit = job.opts.get("stackTraceLimit")
        if limit == 0:
            stack = []
        elif isinstance(limit, int) and limit > 0:
            stack = stack[-limit:]
        stack_json = json.dumps(stack)
        try:
            delay = retry_delay(
                attempts=int(job.opts.get("attempts") or 0),
                attempts_made=job.attempts_made,
                attempts_started=job.attempts_started,
                max_started_attempts=self.max_started_attempts,
                unrecoverable=isinstance(error, UnrecoverableError),
                backoff=job.opts.get("backoff"),
                error=error,
                job=job,
                strategy=self.backoff_strategy,
            )
        except Exception as exc:  # noqa: BLE001 - a broken strategy fails the job for good
            self._emit_error(exc)
            delay = None
        job.failed_reason = message
        job.stacktrace = stack
        if delay is None:
            next_work = self._fail_for_good(job, token, message, stack_json, fetch_next)
        elif delay > 0:
            next_work = self._delay(job, token, message, stack_json, delay, fetch_next)
        else:
            self._retry_now(job, token, message, stack_json)
            next_work = None
        self._emit("failed", job, error)
        return next_work

    def _fail_for_good(
        self, job: Job, token: str, message: str, stack_json: str, fetch_next: bool
    ) -> tuple[Job, str] | None:
        reply = self._finish(job, token, "failed", message, stack_json, fetch_next)
        if isinstance(reply, int) and reply < 0:
            self._refused(job, reply, "moveToFinished")
            return None
        return self._next_from(reply, token)

    def _delay(
        self, job: Job, token: str, message: str, stack_json: str, delay: int, fetch_next: bool
    ) -> tuple[Job, str] | None:
        keys = self.queue.keys
        now = _now_ms()
        reply = self.connection.run_script(
            "delayActiveJob",
            worker_steps.delay_keys(self.queue, job.id),
            (
                keys.base,
                now,
                job.id,
                token,
                delay,
                message,
                stack_json,
                "1" if fetch_next else "0",
                self.lock_duration,
                self._limit_max,
                self._limit_window,
                self.name or "",
                OUTCOME_TTL_MS,
            ),
        )
        if isinstance(reply, int) and reply < 0:
            self._refused(job, reply, "moveToDelayed")
            return None
        job.attempts_made += 1
        job.delay = delay
        log.transition(
            "job.delayed",
            queue=self.queue.name,
            job_id=job.id,
            from_state="active",
            to_state="delayed",
            delay_ms=delay,
            attempts_made=job.attempts_made,
        )
        return self._next_from(reply, token)

    def _retry_now(self, job: Job, token: str, message: str, stack_json: str) -> None:
        keys = self.queue.keys
        reply = self.connection.run_script(
            "retryActiveJob",
            (
                keys.active,
                keys.wait,
                keys.meta,
                keys.job(job.id),
                keys.events,
                keys.delayed,
                keys.prioritized,
                keys.pc,
                keys.marker,
                keys.stalled,
                keys.op(self.queue.next_token()),
            ),
            (
                keys.base,
                _now_ms(),
                "1" if job.lifo else "0",
                job.id,
                token,
                message,
                stack_json,
                OUTCOME_TTL_MS,
            ),
        )
        if isinstance(reply, int):
            self._refused(job, reply, "retryJob")
            return
        job.attempts_made += 1
        log.transition(
            "job.retrying",
            queue=self.queue.name,
            job_id=job.id,
            from_state="active",
            to_state=str(reply[1]),
            attempts_made=job.attempts_made,
        )
        return

    def _next_from(self, reply: Any, token: str) -> tuple[Job, str] | None:
        job = self._job_from_reply(reply)
        if job is None:
            return None
        # Even when closing meanwhile, a job handed back is locked by us: run it.
        return job, token

    def _refused(self, job: Job, code: int, command: str) -> None:
        """A finishing script answered with a BullMQ error code: log and report it."""
        error = job_error(
            code, queue=self.queue.name, job_id=job.id, command=command, state="active"
        )
        log.refused(
            "job.finish_refused",
            queue=self.queue.name,
            job_id=job.id,
            code=error.code,
            error=str(error),
        )
        self._emit_error(error)

    # -- background duties ----------------------------------------------------------------

    def _renew_loop(self) -> None:
        period = self.lock_duration / 2000
        while not self._closing.wait(period):
            with self._running_lock:
                held = list(self._running.items())
            if not held:
                continue
            keys = self.queue.keys
            args: list[Any] = [keys.base, self.lock_duration]
            for job_id, token in held:
                args += [job_id, token]
            try:
                lost = self.connection.run_script("extendLocks", (keys.stalled,), args)
            except Exception as exc:  # noqa: BLE001 - keep renewing
                self._emit_error(exc)
                continue
            for job_id in lost or []:
                log.event("job.lock_lost", queue=self.queue.name, job_id=job_id, worker=self.id)

    def check_stalled(self) -> list[str]:
        """Run one stalled-job check now (it does nothing if any checker ran this interval)."""
        keys = self.queue.keys
        moved = self.connection.run_script(
            "stalledCheck",
            (
                keys.stalled,
                keys.wait,
                keys.active,
                keys.stalled_check,
                keys.meta,
                keys.marker,
                keys.events,
                keys.repeat,
            ),
            (self.max_stalled_count, keys.base, _now_ms(), self.stalled_interval),
        )
        for job_id in moved or []:
            log.transition(
                "job.stalled",
                queue=self.queue.name,
                job_id=job_id,
                from_state="active",
                to_state="waiting",
            )
            self._emit("stalled", job_id)
        return list(moved or [])

    def _stalled_loop(self) -> None:
        period = self.stalled_interval / 1000
        while not self._closing.is_set():
            if self._paused.is_set():  # worker steps: BullMQ stops its checker while paused
                self._closing.wait(min(period, 0.5))
                continue
            try:
                self.check_stalled()
            except Exception as exc:  # noqa: BLE001 - keep checking
                self._emit_error(exc)
            if self._closing.wait(period):
                return

    # -- events ---------------------------------------------------------------------------

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self._listeners[event]:
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - a listener must not break the worker
                if event != "error":
                    self._emit_error(exc)

    def _emit_error(self, error: BaseException) -> None:
        log.event(
            "worker.error",
            queue=self.queue.name,
            worker=self.id,
            error=type(error).__name__,
            detail=str(error),
        )
        self._emit("error", error)
