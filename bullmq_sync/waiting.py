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
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import ClientClosed, InvalidArgument, JobFailed, JobWaitTimeout, job_error

if TYPE_CHECKING:
    from .context import QueueContext
    from .events import QueueEvent, QueueEvents

_CLOSED_CHECK_SECONDS = 1.0
"""How often a waiter wakes to notice that its QueueEvents was closed (no Redis call)."""

NOT_FINISHED, COMPLETED, FAILED, MISSING = 0, 1, 2, -1

REMOVED_JOB_SEARCH = 1000
"""How many of the newest events are searched for the outcome of a job already removed."""


@runtime_checkable
class _EventsLike(Protocol):
    """What waiting needs of a ``QueueEvents`` (checked without importing the face)."""

    keys: Any
    closed: bool
    running: bool
    _read_lock: Any

    def on(self, event: str, callback: Any) -> Any: ...

    def off(self, event: str, callback: Any) -> Any: ...

    def start(self) -> Any: ...


def finished_state(queue: QueueContext, job_id: str) -> tuple[int, Any]:
    """``(COMPLETED, return value)``, ``(FAILED, failedReason)``, ``(NOT_FINISHED, None)``
    or ``(MISSING, None)``, read atomically (BullMQ's ``isFinished``).

    Unlike BullMQ, a job removed as it finished (``removeOnComplete``) is answered from its
    ``completed``/``failed`` event when that is among the newest events, instead of failing
    with "Missing key": the usual request/reply race with a fast worker.
    """
    keys = queue.keys
    reply = queue.connection.run_script(
        "jobFinishedState",
        (keys.completed, keys.failed, keys.job(job_id), keys.events),
        (job_id, REMOVED_JOB_SEARCH),
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


def _check(queue: QueueContext, job_id: str, queue_events: Any) -> None:
    if not isinstance(queue_events, _EventsLike):
        raise InvalidArgument(
            f"wait_until_finished needs a QueueEvents, got {type(queue_events).__name__}"
        )
    if queue_events.keys.qualified_name != queue.keys.qualified_name:
        raise InvalidArgument(
            f"the QueueEvents watches {queue_events.keys.qualified_name!r} but job {job_id} "
            f"is in {queue.keys.qualified_name!r}"
        )
    if queue_events.closed:
        raise ClientClosed(f"{queue_events!r} is closed")
    # Lock first: a reader that took it and is not the start() thread, alive by then, is iter().
    if queue_events._read_lock.locked() and not queue_events.running:
        raise InvalidArgument(
            f"{queue_events!r} is being read with iter(); wait_until_finished needs its "
            "callback thread (use another QueueEvents, or start() instead of iter())"
        )


def wait_until_finished(
    queue: QueueContext,
    job_id: str,
    name: str,
    queue_events: QueueEvents,
    timeout: float | None,
) -> Any:
    """Block until ``job`` completes (return its value) or fails (raise ``JobFailed``).

    ``timeout`` in seconds (None waits forever) raises ``JobWaitTimeout``. ``queue_events``
    must watch the job's queue; its callback thread is started if it is not running.
    """
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise InvalidArgument(f"timeout must be None or seconds >= 0, got {timeout!r}")
    _check(queue, job_id, queue_events)
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

    completed_name, failed_name = f"completed:{job_id}", f"failed:{job_id}"
    queue_events.on(completed_name, on_completed)
    queue_events.on(failed_name, on_failed)
    try:
        if not queue_events.running:
            queue_events.start()
        status, value = finished_state(queue, job_id)
        if status == MISSING:
            raise job_error(-1, queue=queue.name, job_id=job_id, command="isFinished")
        if status != NOT_FINISHED:
            settle(status, value)
        while not arrived.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobWaitTimeout(
                    f"Job wait {name} timed out before finishing, no finish notification "
                    f"arrived after {_ms(timeout)}ms (id={job_id})",
                    queue=queue.name,
                    job_id=job_id,
                    timeout=float(timeout or 0),
                )
            step = _CLOSED_CHECK_SECONDS if remaining is None else min(remaining, 1.0)
            if not arrived.wait(step) and queue_events.closed:
                raise ClientClosed(f"{queue_events!r} was closed while waiting for job {job_id}")
    finally:
        queue_events.off(completed_name, on_completed)
        queue_events.off(failed_name, on_failed)
    status, value = outcome[0]
    if status == FAILED:
        raise JobFailed("" if value is None else str(value), queue=queue.name, job_id=job_id)
    return value


def _ms(seconds: float | None) -> int | float:
    value = (seconds or 0) * 1000
    return int(value) if float(value).is_integer() else value


def wait_until_finished_node(
    queue: QueueContext, job_id: str, name: str, queue_events: QueueEvents, ttl: Any = None
) -> Any:
    """BullMQ's shape: ``waitUntilFinished(queueEvents, ttl)``, ttl in ms (0/None: forever)."""
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0):
        raise InvalidArgument(f"ttl must be milliseconds >= 0, got {ttl!r}")
    return wait_until_finished(queue, job_id, name, queue_events, ttl / 1000 if ttl else None)
