"""Manual processing: BullMQ's "manually processing jobs" pattern, without a processor.

``worker = Worker("q", None)`` then ``job = worker.get_next_job(token)`` takes the next job
and locks it with *your* token; ``job.move_to_completed(value, token)``,
``job.move_to_failed(error, token)`` and ``job.extend_lock(token, ms)`` finish or keep it.
Every move is the script the worker itself uses (``fetchJob``, ``finishJob``,
``delayActiveJob``, ``retryActiveJob``) plus ``extendLock``, so a job taken here is an
ordinary active job to Node BullMQ (same lock key, same token, same stalled checks).

* ``get_next_job`` fetches at once; with ``block`` (the default) and nothing ready it waits
  on the queue's marker (``BZPOPMIN``, one thread of a worker at a time, the others waiting
  for its wake-up) and fetches again, for at most ``drain_delay`` seconds in all. A rate
  limit is waited out within that bound. It returns None when the worker is paused or closing.
* ``move_to_failed`` decides as BullMQ 6.7's ``Job.moveToFailed`` does: attempts left ->
  retried (after its backoff: delayed; without one: straight back to wait), otherwise failed
  for good. The worker that took the job supplies lock duration, limiter, name, keep
  policies, metrics, ``backoff_strategy`` and ``max_started_attempts``, as Node's job reads
  them from its worker.
* ``fetch_next=True`` takes the next job in the same call, locked with the same token.

A wrong or expired token raises ``JobLockMismatch`` (-6) / ``JobLockNotFound`` (-2) and
changes nothing; bad arguments raise ``InvalidArgument`` before anything is sent.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import log, worker_steps
from .backoff import BackoffStrategy, retry_delay
from .errors import InvalidArgument, UnrecoverableError, job_error
from .job import OUTCOME_TTL_MS, Job

if TYPE_CHECKING:
    from .connection import BlockingReader
    from .queue import Queue
    from .worker import Worker

DEFAULT_LOCK_MS = 30000
"""Lock duration for a job not taken through a Worker (BullMQ's default lockDuration)."""

MAX_BLOCK_SECONDS = 10.0
"""Longest single marker wait, as the worker's (Redis-side BZPOPMIN ceiling)."""

_GET_NEXT_JOB_OPTIONS = ("block",)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=False))


# -- arguments ------------------------------------------------------------------------------


def check_token(token: object) -> str:
    """A lock token: a non-empty string (BullMQ's ``"0"`` means "no lock", as in Node)."""
    if not isinstance(token, str) or not token:
        raise InvalidArgument(f"token must be a non-empty string (the lock token), got {token!r}")
    return token


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be True or False, got {value!r}")
    return value


def block_option(block: object) -> bool:
    """``block`` as a bool, or from Node's options object ``{"block": bool}`` (None: {})."""
    if block is None:
        return True
    if isinstance(block, Mapping):
        unknown = sorted(str(key) for key in block if key not in _GET_NEXT_JOB_OPTIONS)
        if unknown:
            raise InvalidArgument(
                f"unsupported getNextJob option(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(_GET_NEXT_JOB_OPTIONS)}"
            )
        block = block.get("block", True)
    return _flag("block", block)


def _error_of(error: object) -> tuple[str, BaseException | None]:
    """(failedReason, the exception) of what ``move_to_failed`` was given."""
    if isinstance(error, BaseException):
        return str(error), error
    if isinstance(error, str):
        return error, None
    raise InvalidArgument(f"error must be an exception or a message string, got {error!r}")


# -- what a finishing call reads from the worker that took the job -------------------------


@dataclass(frozen=True)
class Settings:
    """The worker options BullMQ's job reads when it is finished (``job.queue.opts``)."""

    lock_ms: int = DEFAULT_LOCK_MS
    limit_max: str = ""
    limit_window: str = ""
    name: str = ""
    remove_on_complete: Any = None
    remove_on_fail: Any = None
    max_metrics: str = ""
    backoff_strategy: BackoffStrategy | None = None
    max_started_attempts: int | None = None


def settings_of(worker: Worker | None) -> Settings:
    """The settings of ``worker`` (BullMQ's defaults for a job loaded without one)."""
    if worker is None:
        return Settings()
    return Settings(
        lock_ms=worker.lock_duration,
        limit_max=worker._fetcher.limit_max,
        limit_window=worker._fetcher.limit_window,
        name=worker.name or "",
        remove_on_complete=worker.remove_on_complete,
        remove_on_fail=worker.remove_on_fail,
        max_metrics=worker_steps.max_data_points(worker.metrics),
        backoff_strategy=worker.backoff_strategy,
        max_started_attempts=worker.max_started_attempts,
    )


# -- taking jobs ----------------------------------------------------------------------------


def fetch_call(
    queue: Queue, token: str, settings: Settings
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """KEYS and ARGV of ``lua/fetchJob.lua`` for one worker fetch with ``token``."""
    keys = queue.keys
    return (
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
            settings.lock_ms,
            settings.limit_max,
            settings.limit_window,
            settings.name,
        ),
    )


class _MarkerWait:
    """One thread of a worker blocks on the marker; the others wait for its wake-up."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._blocking = False
        self._round = 0

    def wait(self, worker: Worker, seconds: float) -> None:
        with self._cond:
            if self._blocking:
                seen = self._round
                self._cond.wait_for(lambda: self._round != seen, seconds)
                return
            self._blocking = True
        try:
            reader = _blocking_reader(worker)
            if reader is not None:
                reader.call("BZPOPMIN", worker.queue.keys.marker, round(max(seconds, 0.001), 3))
        finally:
            with self._cond:
                self._blocking = False
                self._round += 1
                self._cond.notify_all()


_WAITS: weakref.WeakKeyDictionary[Worker, _MarkerWait] = weakref.WeakKeyDictionary()
_WAITS_LOCK = threading.Lock()


def _marker_wait(worker: Worker) -> _MarkerWait:
    with _WAITS_LOCK:
        wait = _WAITS.get(worker)
        if wait is None:
            wait = _WAITS[worker] = _MarkerWait()
        return wait


def _blocking_reader(worker: Worker) -> BlockingReader | None:
    """The worker's marker socket, created on first use; ``close()`` interrupts and closes it."""
    return worker._fetcher.marker_reader()


def _rest(worker: Worker, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early once the worker closes or pauses."""
    end = time.monotonic() + seconds
    while not (worker.closing or worker.is_paused()):
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def _taken(queue: Queue, reply: Any, token: str, worker: Worker | None) -> Job | None:
    """The job a fetching script handed over (locked with ``token``), or None."""
    if not (isinstance(reply, list) and reply and isinstance(reply[0], list)):
        return None
    job = Job.from_hash(queue, str(reply[1]), _pairs(reply[0]))
    job.worker = worker
    job.token = token
    log.transition(
        "job.active",
        queue=queue.name,
        job_id=job.id,
        from_state="waiting",
        to_state="active",
        worker=worker.id if worker is not None else None,
        attempts_started=job.attempts_started,
        manual=True,
    )
    if job.repeat_job_key:
        from . import schedulers

        try:  # as BullMQ's worker: the next iteration of a job scheduler is created on fetch
            schedulers.after_fetch(queue, job)
        except Exception as exc:  # reported; the job is still handed over
            if worker is None:
                raise
            worker._events.error(exc)
    if worker is not None:
        worker._events.emit("active", job)
    return job


def get_next_job(worker: Worker, token: object, block: object = True) -> Job | None:
    """BullMQ's ``Worker.getNextJob``: the next job, locked with ``token``; None if none came."""
    lock = check_token(token)
    blocking = block_option(block)
    if worker.running:
        raise InvalidArgument(
            "get_next_job takes jobs by hand: use a Worker that is not running a processor "
            "(Worker(name, None))"
        )
    queue = worker.queue
    settings = settings_of(worker)
    deadline = time.monotonic() + worker.drain_delay
    while not (worker.closing or worker.is_paused()):
        keys, args = fetch_call(queue, lock, settings)
        reply = worker.connection.run_script("fetchJob", keys, args)
        job = _taken(queue, reply, lock, worker)
        if job is not None or not blocking:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        limited, due = int(reply[2]), int(reply[3])
        if limited > 0:
            _rest(worker, min(limited / 1000, left))
            continue
        wait = min(left, MAX_BLOCK_SECONDS)
        if due > 0:
            wait = min(wait, max((due - _now_ms()) / 1000, 0.001))
        _marker_wait(worker).wait(worker, wait)
    return None


# -- finishing a job taken manually ---------------------------------------------------------


def _refuse(job: Job, code: int, command: str) -> None:
    error = job_error(code, queue=job.queue.name, job_id=job.id, command=command, state="active")
    log.refused(
        f"job.{command}_refused", queue=job.queue.name, job_id=job.id, code=code, error=str(error)
    )
    raise error


def _finish_call(
    job: Job, token: str, target: str, value: str, stack: str, fetch_next: bool, s: Settings
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """KEYS and ARGV of ``lua/finishJob.lua``, with the worker's keep policy and metrics."""
    from .worker_parts.settings import keep_policy

    keys = job.queue.keys
    option = "removeOnComplete" if target == "completed" else "removeOnFail"
    policy = job.opts.get(option)
    if policy is None:
        policy = s.remove_on_complete if target == "completed" else s.remove_on_fail
    count, age, limit = keep_policy(policy)
    call_keys = (
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
        keys.op(job.queue.next_token()),
    )
    args: tuple[Any, ...] = (
        job.id,
        _now_ms(),
        target,
        value,
        keys.base,
        token,
        count,
        age,
        limit,
        int(job.opts.get("attempts") or 0),
        stack,
        "1" if fetch_next else "0",
        s.lock_ms,
        s.limit_max,
        s.limit_window,
        s.name,
        OUTCOME_TTL_MS,
    )
    if s.max_metrics:
        return (*call_keys, keys.metrics(target)), (*args, s.max_metrics)
    return call_keys, args


def _finished(job: Job, target: str, now: int) -> None:
    job.finished_on = now
    job.attempts_made += 1
    log.transition(
        f"job.{target}",
        queue=job.queue.name,
        job_id=job.id,
        from_state="active",
        to_state=target,
        attempts_made=job.attempts_made,
        manual=True,
    )


def move_to_completed(
    job: Job, return_value: Any, token: object, fetch_next: object = False
) -> Job | None:
    """BullMQ's ``Job.moveToCompleted``: completed with ``return_value`` (stored as JSON)."""
    lock = check_token(token)
    fetch = _flag("fetch_next", fetch_next)
    try:
        encoded = json.dumps(return_value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"return_value must be JSON-serializable: {exc}") from exc
    settings = settings_of(job.worker)
    keys, args = _finish_call(job, lock, "completed", encoded, "", fetch, settings)
    reply = job.queue.connection.run_script("finishJob", keys, args)
    if isinstance(reply, int) and reply < 0:
        _refuse(job, reply, "moveToFinished")
    job.return_value = return_value
    _finished(job, "completed", int(args[1]))
    return _taken(job.queue, reply, lock, job.worker)


def _stacktrace(job: Job, error: BaseException | None) -> list[str]:
    """The job's stacktrace with this failure appended, trimmed by ``stackTraceLimit``."""
    stack = list(job.stacktrace)
    if error is not None:
        stack.append("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    limit = job.opts.get("stackTraceLimit")
    if limit == 0:
        return []
    if isinstance(limit, int) and limit > 0:
        return stack[-limit:]
    return stack


def _unrecoverable(error: BaseException | None) -> bool:
    return isinstance(error, UnrecoverableError) or type(error).__name__ == "UnrecoverableError"


def move_to_failed(
    job: Job, error: object, token: object, fetch_next: object = False
) -> Job | None:
    """BullMQ's ``Job.moveToFailed``: retried while attempts remain (after the backoff), else
    failed for good; returns the next job when ``fetch_next`` took one."""
    lock = check_token(token)
    fetch = _flag("fetch_next", fetch_next)
    message, exc = _error_of(error)
    settings = settings_of(job.worker)
    try:
        delay = retry_delay(
            attempts=int(job.opts.get("attempts") or 0),
            attempts_made=job.attempts_made,
            attempts_started=job.attempts_started,
            max_started_attempts=settings.max_started_attempts,
            unrecoverable=_unrecoverable(exc),
            backoff=job.opts.get("backoff"),
            error=exc if exc is not None else Exception(message),
            job=job,
            strategy=settings.backoff_strategy,
        )
    except ValueError as bad:  # an unknown backoff type: refused before anything is sent
        raise InvalidArgument(str(bad)) from bad
    stack = _stacktrace(job, exc)
    stack_json = json.dumps(stack)
    if delay is None:
        keys, args = _finish_call(job, lock, "failed", message, stack_json, fetch, settings)
        reply = job.queue.connection.run_script("finishJob", keys, args)
        if isinstance(reply, int) and reply < 0:
            _refuse(job, reply, "moveToFinished")
        job.failed_reason, job.stacktrace = message, stack
        _finished(job, "failed", int(args[1]))
        return _taken(job.queue, reply, lock, job.worker)
    if delay > 0:
        return _retry_later(job, lock, message, stack, delay, fetch, settings)
    _retry_now(job, lock, message, stack)
    return None


def _retry_later(
    job: Job, token: str, message: str, stack: list[str], delay: int, fetch: bool, s: Settings
) -> Job | None:
    """The backoff: ``delayActiveJob`` counts the attempt and may take the next job."""
    queue = job.queue
    reply = queue.connection.run_script(
        "delayActiveJob",
        worker_steps.delay_keys(queue, job.id),
        (
            queue.keys.base,
            _now_ms(),
            job.id,
            token,
            delay,
            message,
            json.dumps(stack),
            "1" if fetch else "0",
            s.lock_ms,
            s.limit_max,
            s.limit_window,
            s.name,
            OUTCOME_TTL_MS,
        ),
    )
    if isinstance(reply, int) and reply < 0:
        _refuse(job, reply, "moveToDelayed")
    job.failed_reason, job.stacktrace = message, stack
    job.attempts_made += 1
    job.delay = delay
    log.transition(
        "job.delayed",
        queue=queue.name,
        job_id=job.id,
        from_state="active",
        to_state="delayed",
        delay_ms=delay,
        attempts_made=job.attempts_made,
        manual=True,
    )
    return _taken(queue, reply, token, job.worker)


def _retry_now(job: Job, token: str, message: str, stack: list[str]) -> None:
    """No backoff: ``retryActiveJob`` puts the job straight back (BullMQ's retryJob)."""
    queue = job.queue
    keys = queue.keys
    reply = queue.connection.run_script(
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
            keys.op(queue.next_token()),
        ),
        (
            keys.base,
            _now_ms(),
            "1" if job.lifo else "0",
            job.id,
            token,
            message,
            json.dumps(stack),
            OUTCOME_TTL_MS,
        ),
    )
    if isinstance(reply, int):
        _refuse(job, reply, "retryJob")
    job.failed_reason, job.stacktrace = message, stack
    job.attempts_made += 1
    log.transition(
        "job.retrying",
        queue=queue.name,
        job_id=job.id,
        from_state="active",
        to_state=str(reply[1]),
        attempts_made=job.attempts_made,
        manual=True,
    )


def extend_lock(job: Job, token: object, duration: object) -> None:
    """BullMQ's ``Job.extendLock``: the lock held with ``token`` lasts ``duration`` ms more."""
    lock = check_token(token)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
        raise InvalidArgument(f"duration must be a positive number of ms, got {duration!r}")
    keys = job.queue.keys
    reply = job.queue.connection.run_script(
        "extendLock", (keys.job_sub(job.id, "lock"), keys.stalled), (lock, duration, job.id)
    )
    if int(reply) < 0:
        _refuse(job, int(reply), "extendLock")
    log.event("job.lock_extended", queue=job.queue.name, job_id=job.id, duration_ms=duration)
