"""Transitions of one job beyond retry: promote, remove, change delay/priority, update data
and progress, add log rows. One script call each, exactly once, logged as a transition."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from . import log
from .connection import OUTCOME_TTL_MS
from .errors import InvalidArgument, job_error, refusal_code
from .options import PRIORITY_LIMIT, flag

if TYPE_CHECKING:
    from .job import Job
    from .queue import Queue


def _now() -> int:
    return int(time.time() * 1000)


def _raise(job: Job, reply: int | list[Any], command: str, state: str | None = None) -> None:
    code = refusal_code(reply) or 0
    error = job_error(reply, queue=job.queue.name, job_id=job.id, command=command, state=state)
    log.refused(
        f"job.{command}_refused", queue=job.queue.name, job_id=job.id, code=code, error=str(error)
    )
    raise error


def _whole(name: str, value: object, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 0
        or (high is not None and value > high)
    ):
        bound = f"between 0 and {high}" if high is not None else "a non-negative integer"
        raise InvalidArgument(f"{name} must be {bound}, got {value!r}")
    return value


def _reschedule(job: Job, what: str, value: int, lifo: bool, command: str, state: str) -> bool:
    queue = job.queue
    keys = queue.keys
    reply = queue.connection.run_script(
        "rescheduleJob",
        (
            keys.job(job.id),
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
        (job.id, what, value, "1" if lifo else "0", _now(), OUTCOME_TTL_MS),
    )
    if refusal_code(reply) is not None:
        _raise(job, reply, command, state)
    return len(reply) > 1


def promote(job: Job) -> None:
    """Move a delayed job to waiting now (BullMQ ``Job.promote``)."""
    replayed = _reschedule(job, "promote", 0, False, "promote", "delayed")
    job.delay = 0
    to_state = "prioritized" if job.priority > 0 else "waiting"
    log.transition(
        "job.promoted",
        queue=job.queue.name,
        job_id=job.id,
        from_state="delayed",
        to_state=to_state,
        replayed=replayed,
    )


def change_delay(job: Job, delay: int) -> None:
    """Re-time a delayed job to run ``delay`` ms from now (BullMQ ``Job.changeDelay``)."""
    delay = _whole("delay", delay)
    replayed = _reschedule(job, "delay", delay, False, "changeDelay", "delayed")
    job.delay = delay
    log.transition(
        "job.delay_changed",
        queue=job.queue.name,
        job_id=job.id,
        from_state="delayed",
        to_state="delayed",
        delay=delay,
        replayed=replayed,
    )


def change_priority(job: Job, priority: int = 0, lifo: bool = False) -> None:
    """Give a job a new priority; a waiting one is re-queued (BullMQ ``Job.changePriority``)."""
    priority = _whole("priority", priority, PRIORITY_LIMIT)
    replayed = _reschedule(job, "priority", priority, flag("lifo", lifo), "changePriority", "")
    job.priority = priority
    job.opts["priority"] = priority
    log.transition(
        "job.priority_changed",
        queue=job.queue.name,
        job_id=job.id,
        from_state=None,
        to_state=None,
        priority=priority,
        replayed=replayed,
    )


def _fields(job: Job, what: str, value: str, keep_logs: int | None, command: str) -> int:
    queue = job.queue
    keys = queue.keys
    reply = queue.connection.run_script(
        "updateJobFields",
        (keys.job(job.id), keys.events, keys.meta, keys.op(queue.next_token())),
        (job.id, what, value, "" if keep_logs is None else keep_logs, OUTCOME_TTL_MS),
    )
    if isinstance(reply, int):
        _raise(job, reply, command)
    return int(reply[0])


def _json(name: str, value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} must be JSON-serialisable: {exc}") from None


def update_data(job: Job, data: Any) -> None:
    """Replace the job's data (no event, as BullMQ)."""
    text = _json("data", {} if data is None else data)
    _fields(job, "data", text, None, "updateData")
    job.data = {} if data is None else data
    log.transition(
        "job.data_updated", queue=job.queue.name, job_id=job.id, from_state=None, to_state=None
    )


def update_progress(job: Job, progress: Any) -> None:
    """Store progress (a number or a dict) and emit ``progress``."""
    if isinstance(progress, bool) or not isinstance(progress, (int, float, dict, list, str)):
        raise InvalidArgument(f"progress must be a number or JSON object, got {progress!r}")
    _fields(job, "progress", _json("progress", progress), None, "updateProgress")
    job.progress = progress
    log.transition(
        "job.progress", queue=job.queue.name, job_id=job.id, from_state=None, to_state=None
    )


def add_log(job: Job, row: str, keep_logs: int | None = None) -> int:
    """Append a log row; returns how many rows the job keeps (BullMQ ``Job.log``)."""
    if not isinstance(row, str):
        raise InvalidArgument(f"a log row must be a string, got {type(row).__name__}")
    if keep_logs is None:
        stored = job.opts.get("keepLogs")
        keep_logs = stored if isinstance(stored, int) and not isinstance(stored, bool) else None
    if keep_logs is not None:
        _whole("keep_logs", keep_logs)
    count = _fields(job, "log", row, keep_logs, "addLog")
    log.transition(
        "job.logged",
        queue=job.queue.name,
        job_id=job.id,
        from_state=None,
        to_state=None,
        rows=count,
    )
    return count


def remove_by_id(queue: Queue, job_id: str | int, remove_children: bool = True) -> bool:
    """Delete a job by id (BullMQ's ``Queue.remove``); see ``remove``."""
    from .job import Job
    from .keys import validate_job_id

    return remove(Job(queue=queue, id=validate_job_id(job_id)), remove_children)


def remove(job: Job, remove_children: bool = True) -> bool:
    """Delete the job (and its children); False when it, or a child, is locked by a worker."""
    flag("remove_children", remove_children)
    queue = job.queue
    keys = queue.keys
    reply = queue.connection.run_script(
        "removeJobTree",
        (keys.job(job.id), keys.repeat, keys.op(queue.next_token())),
        (job.id, "1" if remove_children else "0", keys.base, _now(), OUTCOME_TTL_MS),
    )
    if isinstance(reply, int) and reply < 0:
        _raise(job, reply, "removeJob")
    if reply == 0:
        log.refused(
            "job.remove_refused",
            queue=queue.name,
            job_id=job.id,
            code=0,
            error=f"Job {job.id} could not be removed: locked by another worker",
        )
        return False
    log.transition(
        "job.removed",
        queue=queue.name,
        job_id=job.id,
        from_state=None,
        to_state=None,
        remove_children=remove_children,
        replayed=isinstance(reply, list),
    )
    return True
