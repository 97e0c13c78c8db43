"""A BullMQ job: its stored hash as typed attributes, and the transitions of one job."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import connection, log
from .errors import InvalidArgument, job_error
from .keys import validate_job_id
from .options import decode_stored_opts
from .states import FINISHED_STATES, JobState

if TYPE_CHECKING:
    from .queue import Queue

OUTCOME_TTL_MS = connection.OUTCOME_TTL_MS
"""A transition's outcome TTL: the connection running the call fills in its ``outcome_ttl_ms``."""

_RETRY_OPTION_NAMES = {
    "resetAttemptsMade": "reset_attempts_made",
    "reset_attempts_made": "reset_attempts_made",
    "resetAttemptsStarted": "reset_attempts_started",
    "reset_attempts_started": "reset_attempts_started",
}

_CAMEL_ALIASES = {
    "attemptsMade": "attempts_made",
    "attemptsStarted": "attempts_started",
    "stalledCounter": "stalled_counter",
    "processedOn": "processed_on",
    "finishedOn": "finished_on",
    "failedReason": "failed_reason",
    "returnvalue": "return_value",
    "parentKey": "parent_key",
    "processedBy": "processed_by",
    "deduplicationId": "deduplication_id",
    "repeatJobKey": "repeat_job_key",
    "queueName": "queue_name",
    "queueQualifiedName": "queue_qualified_name",
}


def _int(value: str | None, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except ValueError:
        return default


def _json(value: str | None, default: Any = None) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass(eq=False)
class Job:
    """One BullMQ job as stored in Redis (``<prefix>:<queue>:<id>``).

    Attributes use snake_case; BullMQ's camelCase names (``attemptsMade``, ``failedReason``,
    ``returnvalue``, ...) work too, so code written from BullMQ's docs runs unchanged.
    """

    queue: Queue
    id: str
    name: str = ""
    data: Any = field(default_factory=dict)
    opts: dict[str, Any] = field(default_factory=dict)
    timestamp: int = 0
    delay: int = 0
    priority: int = 0
    attempts_made: int = 0
    attempts_started: int = 0
    stalled_counter: int = 0
    processed_on: int | None = None
    finished_on: int | None = None
    failed_reason: str | None = None
    stacktrace: list[str] = field(default_factory=list)
    return_value: Any = None
    progress: Any = 0
    parent_key: str | None = None
    parent: dict[str, Any] | None = None
    processed_by: str | None = None
    deduplication_id: str | None = None
    repeat_job_key: str | None = None
    deferred_failure: str | None = None
    raw: dict[str, str] = field(default_factory=dict, repr=False)
    # -- deduplication (producer.py): set only on what a deduplicated Queue.add returned ----
    deduplicated_job_id: str | None = None
    """When ``Queue.add`` was deduplicated: the id the refused new job would have had (this
    Job is then the existing owner, as loaded). None for a job that was really added."""

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def from_hash(cls, queue: Queue, job_id: str, raw: Mapping[str, str]) -> Job:
        """Build a Job from the fields of its Redis hash (all strings)."""
        stacktrace = _json(raw.get("stacktrace"), [])
        parent = _json(raw.get("parent"))
        atm = raw.get("atm", raw.get("attemptsMade"))
        return cls(
            queue=queue,
            id=job_id,
            name=raw.get("name", ""),
            data=_json(raw.get("data"), {}),
            opts=decode_stored_opts(raw.get("opts")),
            timestamp=_int(raw.get("timestamp"), 0) or 0,
            delay=_int(raw.get("delay"), 0) or 0,
            priority=_int(raw.get("priority"), 0) or 0,
            attempts_made=_int(atm, 0) or 0,
            attempts_started=_int(raw.get("ats"), 0) or 0,
            stalled_counter=_int(raw.get("stc"), 0) or 0,
            processed_on=_int(raw.get("processedOn")),
            finished_on=_int(raw.get("finishedOn")),
            failed_reason=raw.get("failedReason"),
            stacktrace=stacktrace if isinstance(stacktrace, list) else [],
            return_value=_json(raw.get("returnvalue")),
            progress=_json(raw.get("progress"), 0),
            parent_key=raw.get("parentKey"),
            parent=parent if isinstance(parent, dict) else None,
            processed_by=raw.get("pb"),
            deduplication_id=raw.get("deid"),
            repeat_job_key=raw.get("rjk"),
            deferred_failure=raw.get("defa"),
            raw=dict(raw),
        )

    @classmethod
    def from_id(cls, queue: Queue, job_id: str | int) -> Job | None:
        """Load a job, or None when the queue has no job with that id (as BullMQ's fromId)."""
        job_id = validate_job_id(job_id)
        raw = queue.connection.execute("HGETALL", queue.keys.job(job_id))
        if not raw:
            return None
        return cls.from_hash(queue, job_id, _pairs(raw))

    fromId = from_id

    def __getattr__(self, item: str) -> Any:
        alias = _CAMEL_ALIASES.get(item)
        if alias is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {item!r}")
        return getattr(self, alias)

    @property
    def queue_name(self) -> str:
        return self.queue.name

    @property
    def queue_qualified_name(self) -> str:
        return self.queue.keys.qualified_name

    @property
    def key(self) -> str:
        """The job hash key, ``<prefix>:<queue>:<id>``."""
        return self.queue.keys.job(self.id)

    @property
    def lifo(self) -> bool:
        return bool(self.opts.get("lifo"))

    # -- transitions ----------------------------------------------------------------------

    def retry(
        self,
        state: str | JobState = JobState.FAILED,
        opts: Mapping[str, Any] | None = None,
        *,
        reset_attempts_made: bool = False,
        reset_attempts_started: bool = False,
    ) -> None:
        """Move this completed or failed job back to waiting (BullMQ's ``Job.retry``).

        A job with a priority goes to the prioritized set, a lifo job to the front of the
        line, any other to the back; workers are woken unless the queue is paused or at its
        global concurrency. ``opts`` accepts BullMQ's ``{"resetAttemptsMade": True}`` form.
        Raises ``JobNotFound`` (-1) or ``JobNotInState`` (-3); ``InvalidArgument`` for a
        state other than ``failed``/``completed`` before anything is sent.
        """
        from_state = _finished_state(state)
        flags = {
            "reset_attempts_made": reset_attempts_made,
            "reset_attempts_started": reset_attempts_started,
        }
        for name, value in (opts or {}).items():
            if name not in _RETRY_OPTION_NAMES:
                raise InvalidArgument(
                    f"unknown retry option {name!r}; "
                    "expected resetAttemptsMade or resetAttemptsStarted"
                )
            flags[_RETRY_OPTION_NAMES[name]] = bool(value)

        queue = self.queue
        started = time.perf_counter()
        reply = queue.connection.run_script(
            "retryFinishedJob",
            *retry_script_call(
                queue,
                self.id,
                from_state,
                lifo=self.lifo,
                reset_attempts_made=flags["reset_attempts_made"],
                reset_attempts_started=flags["reset_attempts_started"],
            ),
        )
        if isinstance(reply, int):
            error = job_error(
                reply, queue=queue.name, job_id=self.id, command="reprocessJob", state=from_state
            )
            log.refused(
                "job.retry_refused", queue=queue.name, job_id=self.id, code=reply, error=str(error)
            )
            raise error

        self.failed_reason = None
        self.finished_on = None
        self.processed_on = None
        self.return_value = None
        if flags["reset_attempts_made"]:
            self.attempts_made = 0
        if flags["reset_attempts_started"]:
            self.attempts_started = 0
        if log.enabled():
            log.transition(
                "job.retried",
                queue=queue.name,
                job_id=self.id,
                from_state=from_state,
                to_state=reply[1],
                reset_attempts_made=flags["reset_attempts_made"],
                reset_attempts_started=flags["reset_attempts_started"],
                replayed=len(reply) > 2,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            )

    # -- reading and managing one job --------------------

    def get_state(self) -> JobState:
        """Where this job is now (``JobState.UNKNOWN`` if nowhere)."""
        from . import getters

        return getters.get_job_state(self.queue, self.id)

    def refresh(self) -> bool:
        """Reload every field from Redis; False (unchanged) if the job no longer exists."""
        from . import getters

        return getters.refresh(self)

    def get_logs(self, start: int = 0, end: int = -1, asc: bool = True) -> list[str]:
        """The job's log rows (oldest first unless ``asc=False``)."""
        from . import getters

        return getters.get_job_logs(self.queue, self.id, start, end, asc)[0]

    def promote(self) -> None:
        """Move this delayed job to waiting now."""
        from . import job_ops

        job_ops.promote(self)

    def change_delay(self, delay: int) -> None:
        """Re-time this delayed job to run ``delay`` ms from now."""
        from . import job_ops

        job_ops.change_delay(self, delay)

    def change_priority(self, priority: int = 0, lifo: bool = False) -> None:
        """Give this job a new priority (re-queued if it is waiting)."""
        from . import job_ops

        job_ops.change_priority(self, priority, lifo)

    def update_data(self, data: Any) -> None:
        """Replace this job's data."""
        from . import job_ops

        job_ops.update_data(self, data)

    def update_progress(self, progress: Any) -> None:
        """Store progress (number or dict) and emit a ``progress`` event."""
        from . import job_ops

        job_ops.update_progress(self, progress)

    def log(self, row: str) -> int:
        """Append a log row; returns how many rows are kept."""
        from . import job_ops

        return job_ops.add_log(self, row)

    def remove(self, remove_children: bool = True) -> bool:
        """Delete this job (and its children); False when a worker holds its lock."""
        from . import job_ops

        return job_ops.remove(self, remove_children)

    getState = get_state
    updateData = update_data
    updateProgress = update_progress
    changeDelay = change_delay
    changePriority = change_priority

    # -- flows: a parent's view of its children (FlowProducer, flow.py) --------------------

    def get_children_values(self) -> dict[str, Any]:
        """Return values of the finished children, keyed by child job key (``:processed``)."""
        key = self.queue.keys.job_sub(self.id, "processed")
        raw = self.queue.connection.execute("HGETALL", key)
        return {key: _json(value) for key, value in _pairs(raw or {}).items()}

    def get_dependencies_count(self) -> dict[str, int]:
        """How many children are processed, unprocessed, failed (fpof) and ignored (idof/cpof)."""
        keys = self.queue.keys
        processed, unprocessed, failed, ignored = self.queue.connection.pipeline(
            [
                ("HLEN", keys.job_sub(self.id, "processed")),
                ("SCARD", keys.job_sub(self.id, "dependencies")),
                ("ZCARD", keys.job_sub(self.id, "unsuccessful")),
                ("HLEN", keys.job_sub(self.id, "failed")),
            ]
        )
        return {
            "processed": int(processed),
            "unprocessed": int(unprocessed),
            "failed": int(failed),
            "ignored": int(ignored),
        }

    getChildrenValues = get_children_values
    getDependenciesCount = get_dependencies_count

    # -- moves a processor makes on its own job (worker_steps.py) -------------------------

    def move_to_delayed(self, timestamp: int | float, token: str | None = None) -> None:
        """Move this active job to delayed until ``timestamp`` ms; then raise DelayedError."""
        from . import worker_steps

        worker_steps.move_to_delayed(self, timestamp, token)

    def move_to_waiting_children(self, token: str | None = None, child: Any = None) -> bool:
        """Park this active job until its children finish; False when none is pending."""
        from . import worker_steps

        return worker_steps.move_to_waiting_children(self, token, child)

    def move_to_wait(self, token: str | None = None) -> int:
        """Put this active job back to waiting (no attempt counted); then raise WaitingError."""
        from . import worker_steps

        return worker_steps.move_to_wait(self, token)

    moveToDelayed = move_to_delayed
    moveToWaitingChildren = move_to_waiting_children
    moveToWait = move_to_wait

    def to_dict(self) -> dict[str, Any]:
        """The job in the shape of Node BullMQ's ``job.toJSON()`` (camelCase keys)."""
        return {
            "id": self.id,
            "name": self.name,
            "data": self.data,
            "opts": self.opts,
            "progress": self.progress,
            "delay": self.delay,
            "priority": self.priority,
            "timestamp": self.timestamp,
            "attemptsMade": self.attempts_made,
            "attemptsStarted": self.attempts_started,
            "stalledCounter": self.stalled_counter,
            "failedReason": self.failed_reason,
            "stacktrace": self.stacktrace,
            "returnvalue": self.return_value,
            "processedOn": self.processed_on,
            "finishedOn": self.finished_on,
            "parentKey": self.parent_key,
            "parent": self.parent,
            "processedBy": self.processed_by,
            "deduplicationId": self.deduplication_id,
            "repeatJobKey": self.repeat_job_key,
            "queueQualifiedName": self.queue_qualified_name,
        }

    # -- display ----------------------------------------------------

    def __repr__(self) -> str:
        from . import display

        return display.job_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: a table of state, attempts, dates, failed reason, data (escaped)."""
        from . import display
        from .errors import BullMQSyncError

        try:
            state: str | None = str(self.get_state())
        except BullMQSyncError:
            state = None
        return display.job_html(self, state)


def retry_script_call(
    queue: Queue,
    job_id: str,
    from_state: str = "failed",
    *,
    lifo: bool = False,
    reset_attempts_made: bool = False,
    reset_attempts_started: bool = False,
) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """KEYS and ARGV of ``lua/retryFinishedJob.lua`` (a fresh call token each time)."""
    keys = queue.keys
    return (
        (
            keys.job(job_id),
            keys.events,
            keys.state(from_state),
            keys.wait,
            keys.meta,
            keys.active,
            keys.marker,
            keys.prioritized,
            keys.pc,
            keys.op(queue.next_token()),
        ),
        (
            job_id,
            "1" if lifo else "0",
            from_state,
            "1" if reset_attempts_made else "0",
            "1" if reset_attempts_started else "0",
            OUTCOME_TTL_MS,
        ),
    )


def _finished_state(state: str | JobState) -> str:
    try:
        value = JobState(state)
    except ValueError:
        value = None
    if value not in FINISHED_STATES:
        raise InvalidArgument(
            f"only completed or failed jobs can be retried; state must be 'failed' or "
            f"'completed', got {state!r}"
        )
    assert value is not None
    return value.value


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=False))
