"""Waiting for one job's outcome through a ``QueueEvents`` (BullMQ's ``job.waitUntilFinished``).

Request/reply from a web handler: add a job, then block until a worker (Python or Node)
completes or fails it. No polling: the waiting thread sleeps on a ``threading.Event`` that the
``QueueEvents`` callback thread sets when the job's ``completed`` or ``failed`` event arrives.
As in BullMQ, the job's state is read once *after* the listeners are registered, so a job that
finished before the call is answered at once and one that finishes later is never missed (the
``QueueEvents`` reads every event written after it was created). Any number of threads may
wait on one ``QueueEvents``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from .errors import ClientClosed, InvalidArgument, JobFailed, JobWaitTimeout, job_error

if TYPE_CHECKING:
    from .events import QueueEvent, QueueEvents
    from .job import Job

_CLOSED_CHECK_SECONDS = 1.0
"""How often a waiter wakes to notice that its QueueEvents was closed (no Redis call)."""

NOT_FINISHED, COMPLETED, FAILED, MISSING = 0, 1, 2, -1

REMOVED_JOB_SEARCH = 1000
"""How many of the newest events are searched for the outcome of a job already removed."""


def finished_state(job: Job) -> tuple[int, Any]:
    """``(COMPLETED, return value)``, ``(FAILED, failedReason)``, ``(NOT_FINISHED, None)``
    or ``(MISSING, None)``, read atomically (BullMQ's ``isFinished``).

    Unlike BullMQ, a job removed as it finished (``removeOnComplete``) is answered from its
    ``completed``/``failed`` event when that is among the newest events, instead of failing
    with "Missing key": the usual request/reply race with a fast worker.
    """
    keys = job.queue.keys
    reply = job.queue.connection.run_script(
        "jobFinishedState",
        (keys.completed, keys.failed, keys.job(job.id), keys.events),
        (job.id, REMOVED_JOB_SEARCH),
    )
    status = int(reply[0])
    value = reply[1] if len(reply) > 1 else None
    if status == COMPLETED:
        return status, _return_value(value)
    return status, value


def _return_value(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # BullMQ reads a corrupted return value as undefined


def _check(job: Job, queue_events: Any) -> None:
    from .events import QueueEvents

    if not isinstance(queue_events, QueueEvents):
        raise InvalidArgument(
            f"wait_until_finished needs a QueueEvents, got {type(queue_events).__name__}"
        )
    if queue_events.keys.qualified_name != job.queue.keys.qualified_name:
        raise InvalidArgument(
            f"the QueueEvents watches {queue_events.keys.qualified_name!r} but job {job.id} "
            f"is in {job.queue.keys.qualified_name!r}"
        )
    if queue_events.closed:
        raise ClientClosed(f"{queue_events!r} is closed")
    # Lock first: a reader that took it and is not the start() thread, alive by then, is iter().
    if queue_events._read_lock.locked() and not queue_events.running:
        raise InvalidArgument(
            f"{queue_events!r} is being read with iter(); wait_until_finished needs its "
            "callback thread (use another QueueEvents, or start() instead of iter())"
        )


def wait_until_finished(job: Job, queue_events: QueueEvents, timeout: float | None) -> Any:
    """Block until ``job`` completes (return its value) or fails (raise ``JobFailed``).

    ``timeout`` in seconds (None waits forever) raises ``JobWaitTimeout``. ``queue_events``
    must watch the job's queue; its callback thread is started if it is not running.
    """
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise InvalidArgument(f"timeout must be None or seconds >= 0, got {timeout!r}")
    _check(job, queue_events)
    deadline = None if timeout is None else time.monotonic() + timeout
    arrived = threading.Event()
    outcome: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def settle(status: int, value: Any) -> None:
        with lock:
            if not outcome:
                outcome.append((status, value))
        arrived.set()

    def on_completed(event: QueueEvent) -> None:
        settle(COMPLETED, event.get("returnvalue"))

    def on_failed(event: QueueEvent) -> None:
        settle(FAILED, event.get("failedReason"))

    completed_name, failed_name = f"completed:{job.id}", f"failed:{job.id}"
    queue_events.on(completed_name, on_completed)
    queue_events.on(failed_name, on_failed)
    try:
        if not queue_events.running:
            queue_events.start()
        status, value = finished_state(job)
        if status == MISSING:
            raise job_error(-1, queue=job.queue.name, job_id=job.id, command="isFinished")
        if status != NOT_FINISHED:
            settle(status, value)
        while not arrived.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobWaitTimeout(
                    f"Job wait {job.name} timed out before finishing, no finish notification "
                    f"arrived after {_ms(timeout)}ms (id={job.id})",
                    queue=job.queue.name,
                    job_id=job.id,
                    timeout=float(timeout or 0),
                )
            step = _CLOSED_CHECK_SECONDS if remaining is None else min(remaining, 1.0)
            if not arrived.wait(step) and queue_events.closed:
                raise ClientClosed(f"{queue_events!r} was closed while waiting for job {job.id}")
    finally:
        queue_events.off(completed_name, on_completed)
        queue_events.off(failed_name, on_failed)
    status, value = outcome[0]
    if status == FAILED:
        raise JobFailed("" if value is None else str(value), queue=job.queue.name, job_id=job.id)
    return value


def _ms(seconds: float | None) -> int | float:
    value = (seconds or 0) * 1000
    return int(value) if float(value).is_integer() else value


def wait_until_finished_node(job: Job, queue_events: QueueEvents, ttl: Any = None) -> Any:
    """BullMQ's shape: ``waitUntilFinished(queueEvents, ttl)``, ttl in ms (0/None: forever)."""
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise InvalidArgument(f"ttl must be milliseconds >= 0, got {ttl!r}")
    return wait_until_finished(job, queue_events, ttl / 1000 if ttl else None)
