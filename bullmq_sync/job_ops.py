"""Transitions of one job: retry, promote, remove, change delay/priority, update data and
progress, add log rows. One script call each, exactly once, logged as a transition.

Each takes the queue (a ``QueueContext``) and the job's id, and returns what the ``Job`` face
needs to update itself; nothing here builds or changes a Job."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import log, node_args
from .connection import OUTCOME_TTL_MS
from .errors import InvalidArgument, job_error, refusal_code
from .options import PRIORITY_LIMIT, flag, whole_number
from .states import FINISHED_STATES, JobState

if TYPE_CHECKING:
    from .context import QueueContext


def _now() -> int:
    return int(time.time() * 1000)


def _raise(
    queue: QueueContext,
    job_id: str,
    reply: int | list[Any],
    command: str,
    state: str | None = None,
) -> None:
    code = refusal_code(reply) or 0
    error = job_error(reply, queue=queue.name, job_id=job_id, command=command, state=state)
    log.refused(
        f"job.{command}_refused", queue=queue.name, job_id=job_id, code=code, error=str(error)
    )
    raise error


def _reschedule(
    queue: QueueContext,
    job_id: str,
    what: str,
    value: int,
    lifo: bool,
    command: str,
    state: str,
) -> bool:
    keys = queue.keys
    reply = queue.connection.run_script(
        "rescheduleJob",
        (
            keys.job(job_id),
            keys.delayed,
            keys.wait,
            keys.prioritized,
            keys.pc,
            keys.marker,
            keys.meta,
            keys.active,
            keys.events,
            keys.op(queue.next_token()),
        ),
        (job_id, what, value, "1" if lifo else "0", _now(), OUTCOME_TTL_MS),
    )
    if refusal_code(reply) is not None:
        _raise(queue, job_id, reply, command, state)
    return len(reply) > 1


def promote(queue: QueueContext, job_id: str, *, priority: int = 0) -> None:
    """Move a delayed job to waiting now (BullMQ ``Job.promote``); ``priority`` (the job's)
    only names the state it lands in, in the log."""
    replayed = _reschedule(queue, job_id, "promote", 0, False, "promote", "delayed")
    to_state = "prioritized" if priority > 0 else "waiting"
    log.transition(
        "job.promoted",
        queue=queue.name,
        job_id=job_id,
        from_state="delayed",
        to_state=to_state,
        replayed=replayed,
    )


def change_delay(queue: QueueContext, job_id: str, delay: int) -> int:
    """Re-time a delayed job to run ``delay`` ms from now (BullMQ ``Job.changeDelay``); the
    delay stored."""
    delay = whole_number("delay", delay, 0)
    replayed = _reschedule(queue, job_id, "delay", delay, False, "changeDelay", "delayed")
    log.transition(
        "job.delay_changed",
        queue=queue.name,
        job_id=job_id,
        from_state="delayed",
        to_state="delayed",
        delay=delay,
        replayed=replayed,
    )
    return delay


def change_priority(queue: QueueContext, job_id: str, priority: int = 0, lifo: bool = False) -> int:
    """Give a job a new priority; a waiting one is re-queued (BullMQ ``Job.changePriority``);
    the priority stored."""
    priority = whole_number("priority", priority, 0, PRIORITY_LIMIT)
    lifo = flag("lifo", lifo)
    replayed = _reschedule(queue, job_id, "priority", priority, lifo, "changePriority", "")
    log.transition(
        "job.priority_changed",
        queue=queue.name,
        job_id=job_id,
        from_state=None,
        to_state=None,
        priority=priority,
        replayed=replayed,
    )
    return priority


def _fields(
    queue: QueueContext,
    job_id: str,
    what: str,
    value: str,
    keep_logs: int | None,
    command: str,
) -> int:
    keys = queue.keys
    reply = queue.connection.run_script(
        "updateJobFields",
        (keys.job(job_id), keys.events, keys.meta, keys.op(queue.next_token())),
        (job_id, what, value, "" if keep_logs is None else keep_logs, OUTCOME_TTL_MS),
    )
    if isinstance(reply, int):
        _raise(queue, job_id, reply, command)
    return int(reply[0])


def _json(name: str, value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} must be JSON-serialisable: {exc}") from None


def update_data(queue: QueueContext, job_id: str, data: Any) -> Any:
    """Replace the job's data (no event, as BullMQ); the data stored (``{}`` for None)."""
    stored = {} if data is None else data
    _fields(queue, job_id, "data", _json("data", stored), None, "updateData")
    log.transition(
        "job.data_updated", queue=queue.name, job_id=job_id, from_state=None, to_state=None
    )
    return stored


def update_progress(queue: QueueContext, job_id: str, progress: Any) -> None:
    """Store progress (a number or a dict) and emit ``progress``."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float, dict, list, str)):
        raise InvalidArgument(f"progress must be a number or JSON object, got {progress!r}")
    _fields(queue, job_id, "progress", _json("progress", progress), None, "updateProgress")
    log.transition(
        "job.progress", queue=queue.name, job_id=job_id, from_state=None, to_state=None
    )


def keep_logs_of(opts: Mapping[str, Any]) -> int | None:
    """The ``keepLogs`` job option (None when absent or not an integer)."""
    stored = opts.get("keepLogs")
    return stored if isinstance(stored, int) and not isinstance(stored, bool) else None


def add_log(queue: QueueContext, job_id: str, row: str, keep_logs: int | None = None) -> int:
    """Append a log row, keeping the newest ``keep_logs`` (all when None); returns how many
    rows the job keeps (BullMQ ``Job.log``)."""
    if not isinstance(row, str):
        raise InvalidArgument(f"a log row must be a string, got {type(row).__name__}")
    if keep_logs is not None:
        whole_number("keep_logs", keep_logs, 0)
    count = _fields(queue, job_id, "log", row, keep_logs, "addLog")
    log.transition(
        "job.logged",
        queue=queue.name,
        job_id=job_id,
        from_state=None,
        to_state=None,
        rows=count,
    )
    return count


def remove(queue: QueueContext, job_id: str, remove_children: bool = True) -> bool:
    """Delete the job (and its children); False when it, or a child, is locked by a worker."""
    flag("remove_children", remove_children)
    keys = queue.keys
    reply = queue.connection.run_script(
        "removeJobTree",
        (keys.job(job_id), keys.repeat, keys.op(queue.next_token())),
        (job_id, "1" if remove_children else "0", keys.base, _now(), OUTCOME_TTL_MS),
    )
    if isinstance(reply, int) and reply < 0:
        _raise(queue, job_id, reply, "removeJob")
    if reply == 0:
        log.refused(
            "job.remove_refused",
            queue=queue.name,
            job_id=job_id,
            code=0,
            error=f"Job {job_id} could not be removed: locked by another worker",
        )
        return False
    log.transition(
        "job.removed",
        queue=queue.name,
        job_id=job_id,
        from_state=None,
        to_state=None,
        remove_children=remove_children,
        replayed=isinstance(reply, list),
    )
    return True


def clear_logs(queue: QueueContext, job_id: str, keep_logs: int | None = None) -> None:
    """Delete a job's log rows, or keep only the newest ``keep_logs`` (BullMQ's clearLogs)."""
    key = queue.keys.job_sub(job_id, "logs")
    if keep_logs:
        if isinstance(keep_logs, bool) or not isinstance(keep_logs, int) or keep_logs < 0:
            raise InvalidArgument(f"keep_logs must be a positive integer, got {keep_logs!r}")
        queue.connection.execute("LTRIM", key, -keep_logs, -1)
    else:
        queue.connection.execute("DEL", key)


# -- retry of a finished job (BullMQ's Job.retry; Queue.retry_jobs is in management) --------


def retry(
    queue: QueueContext,
    job_id: str,
    state: str | JobState = JobState.FAILED,
    opts: Mapping[str, Any] | None = None,
    *,
    lifo: bool = False,
    reset_attempts_made: bool = False,
    reset_attempts_started: bool = False,
) -> tuple[bool, bool]:
    """Move a completed or failed job back to waiting; whether its attempts made and started
    were reset (the keywords, or Node's ``{"resetAttemptsMade": True}`` in ``opts``)."""
    from_state = _finished_state(state)
    flags = {
        "reset_attempts_made": flag("reset_attempts_made", reset_attempts_made),
        "reset_attempts_started": flag("reset_attempts_started", reset_attempts_started),
    }
    flags.update(node_args.parse("Job.retry", opts))
    started = time.perf_counter()
    reply = queue.connection.run_script(
        "retryFinishedJob",
        *retry_script_call(
            queue,
            job_id,
            from_state,
            lifo=lifo,
            reset_attempts_made=flags["reset_attempts_made"],
            reset_attempts_started=flags["reset_attempts_started"],
        ),
    )
    code = refusal_code(reply)
    if code is not None:
        error = job_error(
            reply, queue=queue.name, job_id=job_id, command="reprocessJob", state=from_state
        )
        log.refused(
            "job.retry_refused", queue=queue.name, job_id=job_id, code=code, error=str(error)
        )
        raise error
    if log.enabled():
        log.transition(
            "job.retried",
            queue=queue.name,
            job_id=job_id,
            from_state=from_state,
            to_state=reply[1],
            reset_attempts_made=flags["reset_attempts_made"],
            reset_attempts_started=flags["reset_attempts_started"],
            replayed=len(reply) > 2,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )
    return flags["reset_attempts_made"], flags["reset_attempts_started"]


def retry_script_call(
    queue: QueueContext,
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
