"""Every error bullmq-sync raises, and the one place that maps low-level failures to them.

The tree::

    BullMQSyncError
    ├── InvalidArgument (also a ValueError)  bad input, refused before any Redis call
    ├── ConfigurationError                   a setting that cannot work (URL, cluster slots, ...)
    ├── ClientClosed                         the Queue/Connection was closed
    ├── RedisUnavailable                     connection errors/timeouts outlasted the retry budget
    │   └── PoolTimeout                      no pooled connection became free in time
    ├── ScriptFailed                         Redis refused a script in an unexpected way
    ├── QueueHasActiveJobs                   obliterate() without force on a queue with active jobs
    ├── FlowTooLarge                         retry_tree() met more jobs than its max_jobs
    ├── FlowSpansSlots (a ConfigurationError) retry_tree() on a cluster, a job in another slot
    ├── JobFailed                            job.wait_until_finished(): the job failed
    ├── JobWaitTimeout                       job.wait_until_finished(): no outcome in time
    └── JobError                             a BullMQ error code returned by a script
        ├── JobNotFound                 -1   the job hash does not exist
        ├── JobLockNotFound             -2   the job has no lock
        ├── JobNotInState               -3   the job is not in the expected state
        ├── JobPendingChildren          -4   the job still has dependencies
        ├── ParentJobNotFound           -5   the parent job hash does not exist
        ├── JobLockMismatch             -6   another worker holds the lock
        ├── ParentJobCannotBeReplaced   -7   the job already belongs to another parent
        ├── JobBelongsToJobScheduler    -8   a scheduler's current iteration
        ├── JobHasFailedChildren        -9   a child failed with failParentOnFailure
        ├── SchedulerJobIdCollision    -10
        ├── SchedulerJobSlotsBusy      -11
        └── UnknownJobError                  any other negative code

    UnrecoverableError (an Exception, not a BullMQSyncError)
        raised by YOUR processor to fail a job at once, without its remaining attempts

    Raised by YOUR processor after it moved its own job (Exceptions, not BullMQSyncErrors;
    the worker then leaves the job where it is, counts no attempt and emits no "failed"):
    DelayedError            after ``job.move_to_delayed(timestamp, token)``
    WaitingChildrenError    after ``job.move_to_waiting_children(token)`` returned True
    WaitingError            after ``job.move_to_wait(token)``
    RateLimitError          instead: the worker puts the job back at the front of the line
                            (no attempt counted) and pauses fetching for the limiter's TTL,
                            usually after ``worker.rate_limit(ms)``

Each ``JobError`` carries ``code``, ``queue``, ``job_id``, ``command``, ``state`` (the state
the operation expected) and ``actual_state`` (where the job was, when the script reported it:
``JobNotInState`` from ``retry``, ``promote``, ``change_delay``), and its message matches Node
BullMQ's text for the same code, except that a ``JobNotInState`` that knows the actual state
says it: ``Job 1 is waiting, not failed. reprocessJob``. No module but this one and
``connection.py`` (its only caller for redis-py exceptions) knows about redis-py's exceptions.
"""

from __future__ import annotations

from typing import ClassVar

import redis.exceptions


class BullMQSyncError(Exception):
    """Base class of every error raised by bullmq-sync."""


class InvalidArgument(BullMQSyncError, ValueError):
    """An argument was refused before anything was sent to Redis."""


class ConfigurationError(BullMQSyncError):
    """A connection or queue setting that cannot work."""


class ClientClosed(BullMQSyncError):
    """The object was used after ``close()``."""


class RedisUnavailable(BullMQSyncError):
    """Redis could not be reached within the retry budget.

    ``attempts`` is how many times the call was tried; ``ambiguous`` is True when a reply was
    lost after the request may have reached the server (the library then re-asks the server,
    which deduplicates a transition by its call token, so a retried transition never applies
    twice).
    """

    def __init__(self, message: str, *, attempts: int = 1, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.ambiguous = ambiguous


class PoolTimeout(RedisUnavailable):
    """Every pooled connection stayed busy for longer than the pool timeout."""


class ScriptFailed(BullMQSyncError):
    """Redis answered a script call with an unexpected error."""

    def __init__(self, message: str, *, script: str) -> None:
        super().__init__(message)
        self.script = script


class QueueHasActiveJobs(BullMQSyncError):
    """``obliterate()`` refused: the queue has active jobs (pass ``force=True``)."""


# -- flow introspection and retry_tree (flow_introspection.py, flow_retry.py) ------------


class FlowTooLarge(BullMQSyncError):
    """``retry_tree()`` refused: the tree has more jobs to visit than ``max_jobs``."""

    def __init__(self, message: str, *, job_id: str, max_jobs: int) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.max_jobs = max_jobs


class FlowSpansSlots(ConfigurationError):
    """``retry_tree()`` or ``remove_unprocessed_children()`` refused on Redis Cluster: a job
    of the flow has another hash tag (nothing was changed)."""

    def __init__(self, message: str, *, job_id: str, job_key: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.job_key = job_key


# -- end of flow introspection and retry_tree ---------------------------------------------


class JobError(BullMQSyncError):
    """A job operation refused by Redis with one of BullMQ's error codes."""

    code: ClassVar[int] = 0
    template: ClassVar[str] = "Unknown code {code} error for {job_id}. {command}"

    def __init__(
        self,
        *,
        queue: str,
        job_id: str,
        command: str,
        state: str | None = None,
        parent_key: str | None = None,
        code: int | None = None,
        actual_state: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.queue = queue
        self.job_id = job_id
        self.command = command
        self.state = state
        self.parent_key = parent_key
        self.actual_state = actual_state
        super().__init__(
            self._message().format(
                code=self.code,
                job_id=job_id,
                command=command,
                state=state,
                parent_key=parent_key if parent_key is not None else job_id,
                actual_state=actual_state,
            )
        )

    def _message(self) -> str:
        return self.template


class JobNotFound(JobError):
    """The job does not exist (BullMQ code -1)."""

    code = -1
    template = "Missing key for job {job_id}. {command}"


class JobLockNotFound(JobError):
    """The job has no lock (BullMQ code -2)."""

    code = -2
    template = "Missing lock for job {job_id}. {command}"


class JobNotInState(JobError):
    """The job is not in the state the operation needs (BullMQ code -3).

    ``state`` is the state the operation expected (as in BullMQ); ``actual_state`` is where
    the job was when the script refused (``"waiting"``, ..., ``"unknown"`` for no state), read
    by the same script call, or None when the script does not report it.
    """

    code = -3
    template = "Job {job_id} is not in the {state} state. {command}"

    def _message(self) -> str:
        if self.actual_state is None or not self.state:
            return self.template
        if self.actual_state == "unknown":
            return "Job {job_id} is in no state (not in any list), not {state}. {command}"
        return "Job {job_id} is {actual_state}, not {state}. {command}"


class JobPendingChildren(JobError):
    """The job still has pending dependencies (BullMQ code -4)."""

    code = -4
    template = "Job {job_id} has pending dependencies. {command}"


class ParentJobNotFound(JobError):
    """The parent job does not exist (BullMQ code -5)."""

    code = -5
    template = "Missing key for parent job {parent_key}. {command}"


class JobLockMismatch(JobError):
    """The job's lock belongs to another worker (BullMQ code -6)."""

    code = -6
    template = "Lock mismatch for job {job_id}. Cmd {command} from {state}"


class ParentJobCannotBeReplaced(JobError):
    """The job already belongs to another existing parent (BullMQ code -7)."""

    code = -7
    template = "The parent job {parent_key} cannot be replaced. {command}"


class JobBelongsToJobScheduler(JobError):
    """The job is a scheduler's current iteration (BullMQ code -8)."""

    code = -8
    template = "Job {job_id} belongs to a job scheduler and cannot be removed directly. {command}"


class JobHasFailedChildren(JobError):
    """The job has a failed child that fails its parent (BullMQ code -9)."""

    code = -9
    template = "Cannot complete job {job_id} because it has at least one failed child. {command}"


class SchedulerJobIdCollision(JobError):
    """A scheduler iteration's job id already exists (BullMQ code -10)."""

    code = -10
    template = "Cannot create job scheduler iteration - job ID already exists. {command}"


class SchedulerJobSlotsBusy(JobError):
    """Both scheduler time slots already have jobs (BullMQ code -11)."""

    code = -11
    template = (
        "Cannot create job scheduler iteration - current and next time slots already have jobs."
        " {command}"
    )


class UnknownJobError(JobError):
    """A negative code that BullMQ does not define."""


_BY_CODE: dict[int, type[JobError]] = {
    cls.code: cls
    for cls in (
        JobNotFound,
        JobLockNotFound,
        JobNotInState,
        JobPendingChildren,
        ParentJobNotFound,
        JobLockMismatch,
        ParentJobCannotBeReplaced,
        JobBelongsToJobScheduler,
        JobHasFailedChildren,
        SchedulerJobIdCollision,
        SchedulerJobSlotsBusy,
    )
}


def refusal_code(reply: object) -> int | None:
    """The negative code of a script's refusal (``-1`` or ``[-3, "waiting"]``), else None."""
    if isinstance(reply, list) and reply and isinstance(reply[0], int):
        reply = reply[0]
    if isinstance(reply, int) and not isinstance(reply, bool) and reply < 0:
        return reply
    return None


def job_error(
    code: int | list[object],
    *,
    queue: str,
    job_id: str,
    command: str,
    state: str | None = None,
    parent_key: str | None = None,
) -> JobError:
    """Build the typed error for one of BullMQ's negative script return codes.

    ``code`` is the script's reply: a bare code, or ``[code, actual_state]`` (a -3 refusal
    that says where the job is).
    """
    actual_state = None
    if isinstance(code, list):
        if len(code) > 1 and isinstance(code[1], str):
            actual_state = code[1]
        number = refusal_code(code) or 0
    else:
        number = code
    cls = _BY_CODE.get(number, UnknownJobError)
    return cls(
        queue=queue,
        job_id=job_id,
        command=command,
        state=state,
        parent_key=parent_key,
        code=number if cls is UnknownJobError else None,
        actual_state=actual_state,
    )


_TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,  # builtin: socket resets surface as OSError subclasses
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """True for failures worth another attempt: the server may come back."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return False
    return isinstance(exc, _TRANSIENT) or is_readonly(exc)


def is_noscript(exc: BaseException) -> bool:
    """True when Redis does not know a script's SHA (restart, SCRIPT FLUSH, failover)."""
    return isinstance(exc, redis.exceptions.NoScriptError) or (
        isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("NOSCRIPT")
    )


def is_readonly(exc: BaseException) -> bool:
    """True when a replica refused a write (a failover is under way). Redis 7 passes a
    write refused inside a script on as ``READONLY ...``; Redis 6.2 wraps it as ``Error
    running script (...): @user_script:N: ... -READONLY ...``."""
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return True
    if not isinstance(exc, redis.exceptions.ResponseError):
        return False
    text = str(exc)
    return text.startswith("READONLY") or (
        text.startswith("Error running script") and " -READONLY " in text
    )


_PASSWORD_MISSING = ("NOAUTH", "HELLO must be called", "Authentication required")


def map_redis_error(
    exc: BaseException,
    *,
    attempts: int,
    ambiguous: bool,
    where: str = "",
    elapsed: float = 0.0,
    password_given: bool | None = None,
) -> BullMQSyncError:
    """Turn a redis-py failure that ended a call into the public error to raise from it.

    ``where`` (a redacted URL) says which server; ``elapsed`` is the time spent retrying.
    """
    if isinstance(exc, BullMQSyncError):
        return exc
    at = f" at {where}" if where else ""
    if isinstance(exc, redis.exceptions.AuthenticationError) or (
        isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("NOAUTH")
    ):
        if password_given is False and any(text in str(exc) for text in _PASSWORD_MISSING):
            return ConfigurationError(
                f"the Redis server{at} requires a password and none was given "
                "(redis://:PASSWORD@host:port, or redis://USER:PASSWORD@host:port with ACLs)"
            )
        return ConfigurationError(f"the Redis server{at} refused the credentials given: {exc}")
    if is_transient(exc):
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        took = f" in {elapsed:.1f} s" if attempts > 1 else ""
        return RedisUnavailable(
            f"could not reach Redis{at} ({tries}{took}): {exc}",
            attempts=attempts,
            ambiguous=ambiguous,
        )
    return ScriptFailed(f"Redis error: {exc}", script="")


# -- worker: an error users raise -----------------------------------------------


class UnrecoverableError(Exception):
    """Raise it in a Worker processor to fail the job for good, whatever attempts are left."""


# -- worker steps: errors a processor raises after moving its own job (worker_steps.py) ---


class DelayedError(Exception):
    """Raise it after ``job.move_to_delayed(...)``: the worker leaves the delayed job alone."""

    def __init__(self, message: str = "bullmq:movedToDelayed") -> None:
        super().__init__(message)


class WaitingChildrenError(Exception):
    """Raise it after ``job.move_to_waiting_children(...)`` returned True."""

    def __init__(self, message: str = "bullmq:movedToWaitingChildren") -> None:
        super().__init__(message)


class WaitingError(Exception):
    """Raise it after ``job.move_to_wait(token)``: the worker leaves the waiting job alone."""

    def __init__(self, message: str = "bullmq:movedToWait") -> None:
        super().__init__(message)


RATE_LIMIT_MESSAGE = "bullmq:rateLimitExceeded"
"""BullMQ's RateLimitError message; any processor exception with this text counts as one."""


class RateLimitError(Exception):
    """Raise it when the job hit a rate limit: back to wait, no attempt counted."""

    def __init__(self, message: str = RATE_LIMIT_MESSAGE) -> None:
        super().__init__(message)


# -- waiting for a job's outcome (waiting.py) -----------------------------------


class JobFailed(BullMQSyncError):
    """The job ``wait_until_finished`` waited for failed; ``str(err)`` is its failedReason."""

    def __init__(self, failed_reason: str, *, queue: str, job_id: str) -> None:
        super().__init__(failed_reason)
        self.failed_reason = failed_reason
        self.queue = queue
        self.job_id = job_id


class JobWaitTimeout(BullMQSyncError):
    """``wait_until_finished`` saw no outcome within its timeout (the job may still finish)."""

    def __init__(self, message: str, *, queue: str, job_id: str, timeout: float) -> None:
        super().__init__(message)
        self.queue = queue
        self.job_id = job_id
        self.timeout = timeout
