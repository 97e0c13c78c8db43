"""Manual processing: BullMQ's "manually processing jobs" pattern, without a processor.

``worker = Worker("q", None)`` then ``job = worker.get_next_job(token)`` takes the next job
and locks it with *your* token; ``job.move_to_completed(value, token)``,
``job.move_to_failed(error, token)`` and ``job.extend_lock(token, ms)`` finish or keep it.
Every move is the script the worker itself uses (``fetchJob``, ``finishJob``,
``delayActiveJob``, ``retryActiveJob``, built by ``attempt_calls``) plus ``extendLock``, so a
job taken here is an ordinary active job to Node BullMQ (same lock key, same token, same
stalled checks).

* ``move_to_failed`` decides as BullMQ 6.7's ``Job.moveToFailed`` does: attempts left ->
  retried (after its backoff: delayed; without one: straight back to wait), otherwise failed
  for good. The worker that took the job supplies lock duration, limiter, name, keep
  policies, metrics, ``backoff_strategy`` and ``max_started_attempts``, as Node's job reads
  them from its worker.
* ``fetch_next=True`` takes the next job in the same call, locked with the same token.

A wrong or expired token raises ``JobLockMismatch`` (-6) / ``JobLockNotFound`` (-2) and
changes nothing; bad arguments raise ``InvalidArgument`` before anything is sent.

This module holds the operations (one script call each, plain results): ``Job`` applies a
``Moved`` to itself, and the blocking ``get_next_job`` loop lives with the worker's fetcher
(``worker_parts/manual_fetch.py``).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import log
from .attempt_calls import Settings, delay_call, fetched, finish_call, retry_call
from .backoff import retry_delay
from .errors import InvalidArgument, UnrecoverableError
from .worker_steps import refuse_active

if TYPE_CHECKING:
    from .context import QueueContext, StoredJob

_GET_NEXT_JOB_OPTIONS = ("block",)

__all__ = ["Moved", "Settings", "block_option", "check_token", "complete", "extend_lock", "fail"]


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


# -- what the operations read of a job, and what they report back ---------------------------


class JobView(Protocol):
    """What finishing a job reads of it (a ``Job``); the operations never change it."""

    @property
    def id(self) -> str: ...

    @property
    def opts(self) -> dict[str, Any]: ...

    @property
    def attempts_made(self) -> int: ...

    @property
    def attempts_started(self) -> int: ...

    @property
    def stacktrace(self) -> list[str]: ...

    @property
    def lifo(self) -> bool: ...


@dataclass(frozen=True)
class Moved:
    """What a finishing move did, for the Job to take on: every move counts one attempt."""

    token: str
    to_state: str
    at: int
    """When the move was made (epoch ms): ``finished_on`` of a completed or failed job."""
    failed_reason: str | None = None
    stacktrace: list[str] | None = None
    delay: int | None = None
    next: StoredJob | None = None
    """The next job, taken with the same token (``fetch_next``)."""


# -- taking jobs ----------------------------------------------------------------------------


def taken(queue: QueueContext, reply: Any, worker_id: str | None) -> StoredJob | None:
    """The job a fetching script handed over (its id and hash), logged; None if none."""
    job = fetched(reply)
    if job is None:
        return None
    log.transition(
        "job.active",
        queue=queue.name,
        job_id=job.id,
        from_state="waiting",
        to_state="active",
        worker=worker_id,
        attempts_started=int(job.fields.get("ats") or 0),
        manual=True,
    )
    return job


# -- finishing a job taken manually ---------------------------------------------------------


def _finished(queue: QueueContext, job: JobView, target: str) -> None:
    log.transition(
        f"job.{target}",
        queue=queue.name,
        job_id=job.id,
        from_state="active",
        to_state=target,
        attempts_made=job.attempts_made + 1,
        manual=True,
    )


def complete(
    queue: QueueContext,
    job: JobView,
    return_value: Any,
    token: object,
    fetch_next: object,
    settings: Settings,
    worker_id: str | None = None,
) -> Moved:
    """BullMQ's ``Job.moveToCompleted``: completed with ``return_value`` (stored as JSON)."""
    lock = check_token(token)
    fetch = _flag("fetch_next", fetch_next)
    try:
        encoded = json.dumps(return_value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"return_value must be JSON-serializable: {exc}") from exc
    keys, args = finish_call(
        queue, job.id, job.opts, lock, "completed", encoded, "", fetch, settings
    )
    reply = queue.connection.run_script("finishJob", keys, args)
    if isinstance(reply, int) and reply < 0:
        refuse_active(queue, job.id, reply, "moveToFinished")
    _finished(queue, job, "completed")
    return Moved(lock, "completed", int(args[1]), next=taken(queue, reply, worker_id))


def _stacktrace(job: JobView, error: BaseException | None) -> list[str]:
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


def fail(
    queue: QueueContext,
    job: JobView,
    error: object,
    token: object,
    fetch_next: object,
    settings: Settings,
    worker_id: str | None = None,
) -> Moved:
    """BullMQ's ``Job.moveToFailed``: retried while attempts remain (after the backoff), else
    failed for good; ``Moved.next`` is the next job when ``fetch_next`` took one."""
    lock = check_token(token)
    fetch = _flag("fetch_next", fetch_next)
    message, exc = _error_of(error)
    try:
        delay = retry_delay(
            attempts=int(job.opts.get("attempts") or 0),
            attempts_made=job.attempts_made,
            attempts_started=job.attempts_started,
            max_started_attempts=settings.max_started_attempts,
            unrecoverable=_unrecoverable(exc),
            backoff=job.opts.get("backoff"),
            error=exc if exc is not None else Exception(message),
            job=job,  # a user's backoff strategy gets the Job, as in BullMQ
            strategy=settings.backoff_strategy,
        )
    except ValueError as bad:  # an unknown backoff type: refused before anything is sent
        raise InvalidArgument(str(bad)) from bad
    stack = _stacktrace(job, exc)
    stack_json = json.dumps(stack)
    if delay is None:
        keys, args = finish_call(
            queue, job.id, job.opts, lock, "failed", message, stack_json, fetch, settings
        )
        reply = queue.connection.run_script("finishJob", keys, args)
        if isinstance(reply, int) and reply < 0:
            refuse_active(queue, job.id, reply, "moveToFinished")
        _finished(queue, job, "failed")
        return Moved(
            lock, "failed", int(args[1]), message, stack, next=taken(queue, reply, worker_id)
        )
    if delay > 0:
        return _retry_later(queue, job, lock, message, stack, delay, fetch, settings, worker_id)
    return _retry_now(queue, job, lock, message, stack)


def _retry_later(
    queue: QueueContext,
    job: JobView,
    token: str,
    message: str,
    stack: list[str],
    delay: int,
    fetch: bool,
    s: Settings,
    worker_id: str | None,
) -> Moved:
    """The backoff: ``delayActiveJob`` counts the attempt and may take the next job."""
    keys, args = delay_call(
        queue, job.id, token, delay, reason=message, stack=json.dumps(stack), fetch_next=fetch, s=s
    )
    reply = queue.connection.run_script("delayActiveJob", keys, args)
    if isinstance(reply, int) and reply < 0:
        refuse_active(queue, job.id, reply, "moveToDelayed")
    log.transition(
        "job.delayed",
        queue=queue.name,
        job_id=job.id,
        from_state="active",
        to_state="delayed",
        delay_ms=delay,
        attempts_made=job.attempts_made + 1,
        manual=True,
    )
    next_job = taken(queue, reply, worker_id)
    return Moved(token, "delayed", int(args[1]), message, stack, delay, next_job)


def _retry_now(
    queue: QueueContext, job: JobView, token: str, message: str, stack: list[str]
) -> Moved:
    """No backoff: ``retryActiveJob`` puts the job straight back (BullMQ's retryJob)."""
    keys, args = retry_call(queue, job.id, token, job.lifo, message, json.dumps(stack))
    reply = queue.connection.run_script("retryActiveJob", keys, args)
    if isinstance(reply, int):
        refuse_active(queue, job.id, reply, "retryJob")
    log.transition(
        "job.retrying",
        queue=queue.name,
        job_id=job.id,
        from_state="active",
        to_state=str(reply[1]),
        attempts_made=job.attempts_made + 1,
        manual=True,
    )
    return Moved(token, str(reply[1]), int(args[1]), message, stack)


def extend_lock(queue: QueueContext, job_id: str, token: object, duration: object) -> None:
    """BullMQ's ``Job.extendLock``: the lock held with ``token`` lasts ``duration`` ms more."""
    lock = check_token(token)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
        raise InvalidArgument(f"duration must be a positive number of ms, got {duration!r}")
    keys = queue.keys
    reply = queue.connection.run_script(
        "extendLock", (keys.job_sub(job_id, "lock"), keys.stalled), (lock, duration, job_id)
    )
    if int(reply) < 0:
        refuse_active(queue, job_id, int(reply), "extendLock")
    log.event("job.lock_extended", queue=queue.name, job_id=job_id, duration_ms=duration)
