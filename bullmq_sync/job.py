"""A BullMQ job: its stored hash as typed attributes, and the transitions of one job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import (
    connection,
    display,
    flow_introspection,
    flow_retry,
    getters,
    job_ops,
    manual,
    node_args,
    schedulers,
    telemetry,
    waiting,
    worker_steps,
)
from .errors import BullMQSyncError, InvalidArgument
from .keys import validate_job_id
from .options import PreparedJob, decode_stored_opts
from .states import JobState

if TYPE_CHECKING:
    from .context import StoredJob
    from .producer import Added
    from .queue import Queue
    from .worker import Worker  # manual processing

OUTCOME_TTL_MS = connection.OUTCOME_TTL_MS
"""A transition's outcome TTL: the connection running the call fills in its ``outcome_ttl_ms``."""

retry_script_call = job_ops.retry_script_call
"""KEYS and ARGV of one ``retryFinishedJob`` call (kept here for callers of the old place)."""

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
    "deferredFailure": "deferred_failure",
}


def _int(value: str | None, default: int | None = None) -> int | None:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return default


def _json(value: str | None, default: Any = None) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return value


_NOT_STORED = frozenset({"queue", "worker", "token", "deduplicated_job_id"})
"""Job attributes that do not come from the job's hash: ``refresh`` leaves them as they are."""


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
        return cls._from_fields(queue, job_id, dict(raw))

    @classmethod
    def _from_fields(cls, queue: Queue, job_id: str, raw: dict[str, str]) -> Job:
        """``from_hash`` taking ``raw`` as the Job's own ``raw`` (not copied)."""
        # A worker builds one per job: filled in directly, not through the 25-argument
        # dataclass __init__ (same attributes, same values).
        get = raw.get
        stored_stack = get("stacktrace")
        stacktrace = [] if stored_stack is None else _json(stored_stack, [])
        stored_parent = get("parent")
        parent = None if stored_parent is None else _json(stored_parent)
        data = get("data")
        progress = get("progress")
        returnvalue = get("returnvalue")
        atm = get("atm")
        if atm is None:
            atm = get("attemptsMade")
        processed_on, finished_on = get("processedOn"), get("finishedOn")
        try:  # what Redis stores: whole numbers, or nothing
            numbers = (
                int(get("timestamp") or 0),
                int(get("delay") or 0),
                int(get("priority") or 0),
                int(atm or 0),
                int(get("ats") or 0),
                int(get("stc") or 0),
                int(processed_on) if processed_on else None,
                int(finished_on) if finished_on else None,
            )
        except ValueError:  # hand-written: "1.5e3" and the like, or garbage
            numbers = (
                _int(get("timestamp"), 0) or 0,
                _int(get("delay"), 0) or 0,
                _int(get("priority"), 0) or 0,
                _int(atm, 0) or 0,
                _int(get("ats"), 0) or 0,
                _int(get("stc"), 0) or 0,
                _int(processed_on),
                _int(finished_on),
            )
        job = cls.__new__(cls)
        job.__dict__.update(
            queue=queue,
            id=job_id,
            name=get("name", ""),
            data={} if data is None else _json(data),
            opts=decode_stored_opts(get("opts")),
            timestamp=numbers[0],
            delay=numbers[1],
            priority=numbers[2],
            attempts_made=numbers[3],
            attempts_started=numbers[4],
            stalled_counter=numbers[5],
            processed_on=numbers[6],
            finished_on=numbers[7],
            failed_reason=get("failedReason"),
            stacktrace=stacktrace if isinstance(stacktrace, list) else [],
            return_value=None if returnvalue is None else _json(returnvalue),
            progress=0 if progress is None else _json(progress),
            parent_key=get("parentKey"),
            parent=parent if isinstance(parent, dict) else None,
            processed_by=get("pb"),
            deduplication_id=get("deid"),
            repeat_job_key=get("rjk"),
            deferred_failure=get("defa"),
            raw=raw,
            deduplicated_job_id=None,
        )
        return job

    @classmethod
    def from_id(cls, queue: Queue, job_id: str | int) -> Job | None:
        """Load a job, or None when the queue has no job with that id (as BullMQ's fromId)."""
        job_id = validate_job_id(job_id)
        raw = getters.read_job(queue, job_id)
        return None if raw is None else cls.from_hash(queue, job_id, raw)

    fromId = from_id

    @classmethod
    def from_prepared(cls, queue: Queue, job_id: str, job: PreparedJob) -> Job:
        """The Job just stored from ``job`` (no read: the fields are those sent)."""
        parent = None
        if job.parent_json is not None:
            opt = job.opts["parent"]
            assert isinstance(opt, dict)
            parent = {"id": opt["id"], "queueKey": opt["queue"]}
        return cls(
            queue=queue,
            id=job_id,
            name=job.name,
            data=job.data,
            opts=dict(job.opts),
            timestamp=job.timestamp,
            delay=job.delay,
            priority=job.priority,
            parent_key=job.parent_key,
            parent=parent,
            deduplication_id=job.deduplication_id,
        )

    @classmethod
    def from_added(cls, queue: Queue, added: Added) -> Job:
        """The Job an add returns; a deduplicated add returns the existing owner as stored."""
        if added.owner is not None:
            job = cls.from_hash(queue, added.owner.id, added.owner.fields)
        else:
            job = cls.from_prepared(queue, added.job_id, added.prepared)
        job.deduplicated_job_id = added.refused_id
        return job

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
        made, started = job_ops.retry(
            self.queue,
            self.id,
            state,
            opts,
            lifo=self.lifo,
            reset_attempts_made=reset_attempts_made,
            reset_attempts_started=reset_attempts_started,
        )
        self.failed_reason = None
        self.finished_on = None
        self.processed_on = None
        self.return_value = None
        if made:
            self.attempts_made = 0
        if started:
            self.attempts_started = 0

    # -- reading and managing one job --------------------

    def get_state(self) -> JobState:
        """Where this job is now (``JobState.UNKNOWN`` if nowhere)."""
        return getters.get_job_state(self.queue, self.id)

    def refresh(self) -> bool:
        """Reload every stored field from Redis; False (unchanged) if the job no longer exists.

        What is not stored in the job's hash stays: the queue, and the worker and token a job
        taken by hand carries (its lock and retry settings)."""
        raw = getters.read_job(self.queue, self.id)
        if raw is None:
            return False
        fresh = Job.from_hash(self.queue, self.id, raw)
        for name in fresh.__dataclass_fields__:
            if name not in _NOT_STORED:
                setattr(self, name, getattr(fresh, name))
        return True

    def get_logs(self, start: int = 0, end: int = -1, asc: bool = True) -> list[str]:
        """The job's log rows (oldest first unless ``asc=False``)."""
        return getters.get_job_logs(self.queue, self.id, start, end, asc)[0]

    def promote(self) -> None:
        """Move this delayed job to waiting now."""
        job_ops.promote(self.queue, self.id, priority=self.priority)
        self.delay = 0

    def change_delay(self, delay: int) -> None:
        """Re-time this delayed job to run ``delay`` ms from now."""
        self.delay = job_ops.change_delay(self.queue, self.id, delay)

    def change_priority(self, priority: int | Mapping[str, Any] = 0, lifo: bool = False) -> None:
        """Give this job a new priority (re-queued if it is waiting); Node's
        ``{"priority": n, "lifo": bool}`` dict is accepted as first argument."""
        if isinstance(priority, Mapping):
            if lifo:
                raise InvalidArgument("change_priority: give Node's options dict or lifo, not both")
            self.changePriority(priority)
            return
        self.priority = job_ops.change_priority(self.queue, self.id, priority, lifo)
        self.opts["priority"] = self.priority

    def changePriority(self, opts: Mapping[str, Any]) -> None:  # noqa: N802
        """Node's ``changePriority({"priority": n, "lifo": bool})``."""
        parsed = node_args.parse("Job.changePriority", opts)
        self.priority = job_ops.change_priority(self.queue, self.id, **parsed)
        self.opts["priority"] = self.priority

    def update_data(self, data: Any) -> None:
        """Replace this job's data."""
        self.data = job_ops.update_data(self.queue, self.id, data)

    def update_progress(self, progress: Any) -> None:
        """Store progress (number or dict) and emit a ``progress`` event."""
        job_ops.update_progress(self.queue, self.id, progress)
        self.progress = progress

    def log(self, row: str) -> int:
        """Append a log row; returns how many rows are kept."""
        return job_ops.add_log(self.queue, self.id, row, job_ops.keep_logs_of(self.opts))

    def remove(
        self, opts: Mapping[str, Any] | bool | None = None, *, remove_children: bool | None = None
    ) -> bool:
        """Delete this job (and its children unless ``remove_children=False`` or Node's
        ``{"removeChildren": False}``); False when a worker holds its lock."""
        parsed = node_args.flag_or_options("Job.remove", opts, "remove_children")
        if remove_children is not None:
            parsed["remove_children"] = node_args.boolean("remove_children", remove_children)
        return job_ops.remove(self.queue, self.id, parsed.get("remove_children", True))

    getState = get_state
    updateData = update_data
    updateProgress = update_progress
    changeDelay = change_delay

    # -- flows: a parent's view of its children (FlowProducer, flow.py) --------------------

    def get_children_values(self) -> dict[str, Any]:
        """Return values of the finished children, keyed by child job key (``:processed``)."""
        return getters.get_children_values(self.queue, self.id)

    def get_dependencies_count(self, opts: Mapping[str, Any] | None = None) -> dict[str, int]:
        """How many children are processed, unprocessed, failed (fpof) and ignored (idof/cpof).

        Node's ``{"processed": True, ...}`` selects which counts to return (all when none)."""
        wanted = {k for k, v in node_args.parse("Job.getDependenciesCount", opts).items() if v}
        counts = getters.get_dependencies_count(self.queue, self.id)
        return {k: v for k, v in counts.items() if k in wanted} if wanted else counts

    getChildrenValues = get_children_values
    getDependenciesCount = get_dependencies_count

    # -- moves a processor makes on its own job (worker_steps.py) -------------------------

    def move_to_delayed(self, timestamp: int | float, token: str | None = None) -> None:
        """Move this active job to delayed until ``timestamp`` ms; then raise DelayedError."""
        self.delay = worker_steps.move_to_delayed(self.queue, self.id, timestamp, token)

    def move_to_waiting_children(self, token: str | None = None, child: Any = None) -> bool:
        """Park this active job until its children finish; False when none is pending."""
        return worker_steps.move_to_waiting_children(self.queue, self.id, token, child)

    def move_to_wait(self, token: str | None = None) -> int:
        """Put this active job back to waiting (no attempt counted); then raise WaitingError."""
        return worker_steps.move_to_wait(self.queue, self.id, token, priority=self.priority)

    def moveToWaitingChildren(  # noqa: N802
        self, token: str | None = None, opts: Mapping[str, Any] | None = None
    ) -> bool:
        """Node's ``moveToWaitingChildren(token, {"child": {"id", "queue"}})``."""
        return self.move_to_waiting_children(
            token, node_args.parse("Job.moveToWaitingChildren", opts).get("child")
        )

    moveToDelayed = move_to_delayed
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

    to_json = toJSON = to_dict  # Node's job.toJSON()

    # -- Node-shaped extras: thin mappings of BullMQ Job members (node_args) ---------------

    @property
    def prefix(self) -> str:
        """The queue's key prefix (Node's ``job.prefix``)."""
        return self.queue.prefix

    def clear_logs(self, keep_logs: int | None = None) -> None:
        """Delete this job's log rows, or keep only the newest ``keep_logs`` (Node's clearLogs)."""
        job_ops.clear_logs(self.queue, self.id, keep_logs)

    def _is(self, *states: JobState) -> bool:
        return self.get_state() in states

    def is_completed(self) -> bool:
        """True when this job is in ``completed``."""
        return self._is(JobState.COMPLETED)

    def is_failed(self) -> bool:
        """True when this job is in ``failed``."""
        return self._is(JobState.FAILED)

    def is_delayed(self) -> bool:
        """True when this job is in ``delayed``."""
        return self._is(JobState.DELAYED)

    def is_waiting_children(self) -> bool:
        """True when this job waits for its children."""
        return self._is(JobState.WAITING_CHILDREN)

    def is_active(self) -> bool:
        """True when a worker is processing this job."""
        return self._is(JobState.ACTIVE)

    def is_waiting(self) -> bool:
        """True when this job is in ``waiting`` (Node: wait or the legacy paused list)."""
        return self._is(JobState.WAITING)

    clearLogs = clear_logs
    isCompleted = is_completed
    isFailed = is_failed
    isDelayed = is_delayed
    isWaitingChildren = is_waiting_children
    isActive = is_active
    isWaiting = is_waiting
    # -- end of Node-shaped extras ---------------------------------------------------------

    # -- display ----------------------------------------------------

    def __repr__(self) -> str:
        return display.job_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: a table of state, attempts, dates, failed reason, data (escaped)."""
        try:
            with self.queue.connection.short_budget():
                state: str | None = str(self.get_state())
        except BullMQSyncError:
            state = None
        return display.job_html(self, state)

    # ---- manual processing (manual.py): BullMQ's "manually processing jobs" pattern ------

    worker: Worker | None = field(default=None, repr=False)
    """The Worker whose ``get_next_job`` took this job (its lock, keep and retry settings)."""
    token: str | None = field(default=None, repr=False)
    """The lock token this job was taken with (``get_next_job`` / ``fetch_next``), as Node's."""

    def move_to_completed(
        self, return_value: Any = None, token: str | None = None, fetch_next: bool = False
    ) -> Job | None:
        """Complete this active job; with ``fetch_next`` returns the next job (same token)."""
        moved = manual.complete(
            self.queue, self, return_value, token, fetch_next, self._settings(), self._worker_id()
        )
        self.return_value = return_value
        return self._moved(moved)

    def move_to_failed(
        self, error: BaseException | str, token: str | None = None, fetch_next: bool = False
    ) -> Job | None:
        """Fail this attempt: retried (with backoff) while attempts remain, else failed."""
        moved = manual.fail(
            self.queue, self, error, token, fetch_next, self._settings(), self._worker_id()
        )
        return self._moved(moved)

    def extend_lock(self, token: str, duration: int) -> None:
        """Keep the lock taken with ``token`` for ``duration`` more ms (manual processing)."""
        manual.extend_lock(self.queue, self.id, token, duration)

    def _settings(self) -> manual.Settings:
        return manual.Settings() if self.worker is None else self.worker.manual_settings()

    def _worker_id(self) -> str | None:
        return None if self.worker is None else self.worker.id

    def _moved(self, moved: manual.Moved) -> Job | None:
        """Take on what a finishing move did; the next job when one was taken with it."""
        self.attempts_made += 1
        if moved.to_state in ("completed", "failed"):
            self.finished_on = moved.at
        if moved.failed_reason is not None:
            self.failed_reason = moved.failed_reason
        if moved.stacktrace is not None:
            self.stacktrace = moved.stacktrace
        if moved.delay is not None:
            self.delay = moved.delay
        return Job.from_fetch(self.queue, moved.next, moved.token, self.worker)

    @classmethod
    def from_fetch(
        cls, queue: Queue, fetched: StoredJob | None, token: str, worker: Worker | None
    ) -> Job | None:
        """The job a fetch handed over, locked with ``token`` (None for none). A job
        scheduler's next iteration is created now, as BullMQ's worker does: an error there
        goes to the worker's ``error`` listeners (raised without a worker), and the job is
        still handed over; then the worker emits ``active``."""
        if fetched is None:
            return None
        job = cls.from_hash(queue, fetched.id, fetched.fields)
        job.worker = worker
        job.token = token
        if job.repeat_job_key:
            try:
                schedulers.after_fetch(queue, job.id, job.raw)
            except Exception as exc:  # reported; the job is still handed over
                if worker is None:
                    raise
                worker._events.error(exc)
        if worker is not None:
            worker._events.emit("active", job)
        return job

    def moveToCompleted(  # noqa: N802 - BullMQ's name; Node's default fetchNext is true
        self, returnValue: Any = None, token: str | None = None, fetchNext: bool = True  # noqa: N803
    ) -> Job | None:
        """BullMQ's ``moveToCompleted(returnValue, token, fetchNext=true)``."""
        return self.move_to_completed(returnValue, token, fetchNext)

    moveToFailed = move_to_failed
    extendLock = extend_lock

    # ---- end of manual processing --------------------------------------------------------

    # -- flow introspection and retry_tree (flow_introspection.py, flow_retry.py) ---------

    def get_dependencies(
        self,
        opts: Mapping[str, Any] | None = None,
        *,
        processed: Any = None,
        unprocessed: Any = None,
        ignored: Any = None,
        failed: Any = None,
    ) -> dict[str, Any]:
        """Children keys of this parent, as BullMQ's ``getDependencies``.

        Without options: ``{"processed": {key: value}, "unprocessed": [key], "failed": [key],
        "ignored": {key: reason}}``. Asking for pages (``processed={"cursor": 0, "count": 20}``
        or ``True`` for that default, or Node's ``{"processed": {...}, ...}`` dict) returns
        only those, each with its ``next<Type>Cursor``.
        """
        merged: dict[str, Any] = dict(opts) if isinstance(opts, Mapping) else {}
        if opts is not None and not isinstance(opts, Mapping):
            raise InvalidArgument(f"getDependencies options must be a dict, got {opts!r}")
        for name, value in (
            ("processed", processed),
            ("unprocessed", unprocessed),
            ("ignored", ignored),
            ("failed", failed),
        ):
            if value is not None:
                merged[name] = value
        pages = flow_introspection.dependency_pages(merged)
        return flow_introspection.get_dependencies(self.queue, self.id, pages)

    def get_ignored_children_failures(self) -> dict[str, str]:
        """Failure reasons of children whose failure this parent ignored, by child job key."""
        return flow_introspection.get_ignored_children_failures(self.queue, self.id)

    def get_failed_children_values(self) -> dict[str, str]:
        """BullMQ's deprecated name of ``get_ignored_children_failures`` (same result)."""
        return self.get_ignored_children_failures()

    def remove_unprocessed_children(self) -> int:
        """Delete the children still pending (skipping locked and failed ones), with their own
        pending children; returns how many jobs were removed (BullMQ returns nothing)."""
        return flow_introspection.remove_unprocessed_children(self.queue, self.id)

    def retry_tree(
        self,
        opts: Mapping[str, Any] | None = None,
        *,
        reset_attempts_made: bool = False,
        reset_attempts_started: bool = False,
        max_jobs: int | None = None,
    ) -> list[Any]:
        """Retry this failed flow in one atomic call (beyond BullMQ); the jobs moved.

        This job (failed, or waiting for children) and every failed descendant go back:
        leaves to waiting/prioritized as ``retry`` does, parents to waiting-children with
        their failed children pending again. ``opts`` takes ``{"resetAttemptsMade",
        "resetAttemptsStarted", "maxJobs"}``. Raises ``FlowTooLarge`` past ``max_jobs``
        (default 1000), ``FlowSpansSlots`` on a cluster when a job has another hash tag,
        ``JobNotFound`` / ``JobNotInState``; nothing is changed then.
        """
        values = flow_retry.retry_options(
            opts,
            reset_attempts_made=reset_attempts_made,
            reset_attempts_started=reset_attempts_started,
            max_jobs=flow_retry.DEFAULT_MAX_JOBS if max_jobs is None else max_jobs,
        )
        moved = flow_retry.retry_tree(self.queue, self.id, values)
        if moved and moved[-1].key == self.key:
            self.failed_reason = None
            self.finished_on = None
            self.processed_on = None
            if values["reset_attempts_made"]:
                self.attempts_made = 0
            if values["reset_attempts_started"]:
                self.attempts_started = 0
        return moved

    getDependencies = get_dependencies
    getIgnoredChildrenFailures = get_ignored_children_failures
    getFailedChildrenValues = get_failed_children_values
    removeUnprocessedChildren = remove_unprocessed_children
    retryTree = retry_tree

    # -- end of flow introspection and retry_tree ---------------------------------------

    # -- waiting for this job's outcome (waiting.py; BullMQ's waitUntilFinished) ----------

    def wait_until_finished(self, queue_events: Any, timeout: float | None = None) -> Any:
        """Block until this job completes (its return value) or fails (raises ``JobFailed``).

        ``queue_events`` is a ``QueueEvents`` of this job's queue, shared by any number of
        threads; ``timeout`` in seconds (None: forever) raises ``JobWaitTimeout``.
        """
        return waiting.wait_until_finished(self.queue, self.id, self.name, queue_events, timeout)

    def waitUntilFinished(self, queueEvents: Any, ttl: int | None = None) -> Any:  # noqa: N802, N803
        """BullMQ's shape: ``ttl`` in milliseconds (0 or None: no timeout)."""
        return waiting.wait_until_finished_node(self.queue, self.id, self.name, queueEvents, ttl)

    # -- end of waiting for this job's outcome --------------------------------------------

    # -- OpenTelemetry continuation (telemetry.py; the [otel] extra) ------------------------

    def telemetry_context(self, context: Any = None) -> Any:
        """The OpenTelemetry Context of the producer's span stored with this job, for
        ``tracer.start_as_current_span(name, context=job.telemetry_context())``."""
        return telemetry.extract(self, context)

    @property
    def telemetry_metadata(self) -> str | None:
        """The trace carrier stored with this job (BullMQ's ``telemetry.metadata``), or None."""
        return telemetry.metadata_of(self)

    # -- end of OpenTelemetry continuation ------------------------------------------------

