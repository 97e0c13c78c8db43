"""Moves a processor makes on its own job, rate limits and metrics (BullMQ's worker extras).

* ``job.move_to_delayed(timestamp, token)`` -> ``delayActiveJob`` with skipAttempt, then the
  processor raises ``DelayedError``; ``job.move_to_waiting_children(token)`` ->
  ``awaitChildren`` then ``WaitingChildrenError``; ``job.move_to_wait(token)`` and a
  ``RateLimitError`` -> ``returnToWait`` (BullMQ's moveJobFromActiveToWait);
* ``rate_limit(queue, ms)`` sets the limiter as BullMQ does, ``rate_limit_ttl`` reads it;
* ``get_metrics`` reads what workers with ``metrics={"maxDataPoints": n}`` collected.

One script call per transition, exactly once (outcome key), logged with ``log.transition``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import log
from .attempt_calls import delay_call
from .connection import OUTCOME_TTL_MS
from .errors import InvalidArgument, job_error

if TYPE_CHECKING:
    from .context import QueueContext

MAX_SAFE_INTEGER = 9007199254740991
"""What BullMQ writes into the limiter key to force a manual rate limit."""

METRIC_KINDS = ("completed", "failed")


def _now() -> int:
    return int(time.time() * 1000)


def _token(token: object) -> str:
    if token is None:
        return "0"
    if not isinstance(token, str) or not token:
        raise InvalidArgument(f"token must be the job's lock token (a string), got {token!r}")
    return token


def refuse_active(queue: QueueContext, job_id: str, code: int, command: str) -> None:
    """Raise (and log) the error of a BullMQ code answered by a move of an active job."""
    error = job_error(code, queue=queue.name, job_id=job_id, command=command, state="active")
    log.refused(
        f"job.{command}_refused", queue=queue.name, job_id=job_id, code=code, error=str(error)
    )
    raise error


def _ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name} must be a number of milliseconds, got {value!r}")
    return int(value)


# -- moves a processor makes --------------------------------------------------------------


def move_to_delayed(
    queue: QueueContext, job_id: str, timestamp: int | float, token: str | None = None
) -> int:
    """Move an active job to delayed until ``timestamp`` (epoch ms), no attempt counted;
    returns the delay stored (ms from now)."""
    due = _ms("timestamp", timestamp)
    lock = _token(token)
    now = _now()
    delay = max(due - now, 0)
    reply = queue.connection.run_script(
        "delayActiveJob", *delay_call(queue, job_id, lock, delay, skip_attempt=True, now=now)
    )
    if isinstance(reply, int) and reply < 0:
        refuse_active(queue, job_id, reply, "moveToDelayed")
    log.transition(
        "job.delayed",
        queue=queue.name,
        job_id=job_id,
        from_state="active",
        to_state="delayed",
        delay_ms=delay,
        manual=True,
    )
    return delay


def _child_key(child: Any) -> str:
    if child is None:
        return ""
    if isinstance(child, str) and child:
        return child
    if isinstance(child, Mapping) and child.get("id") is not None and child.get("queue"):
        return f"{child['queue']}:{child['id']}"
    key = getattr(child, "key", None)
    if isinstance(key, str):
        return key
    raise InvalidArgument(
        "child must be a job key, a Job or {'id': ..., 'queue': '<prefix>:<name>'}, "
        f"got {child!r}"
    )


def move_to_waiting_children(
    queue: QueueContext, job_id: str, token: str | None = None, child: Any = None
) -> bool:
    """Park an active job in waiting-children; False (job untouched) when nothing is pending.

    ``child`` (a Job, a job key, or BullMQ's ``{"id", "queue"}``) waits for that child only.
    Raises ``JobHasFailedChildren`` (-9) when a child failed with failParentOnFailure.
    """
    if isinstance(child, Mapping) and "child" in child:
        child = child["child"]
    child_key = _child_key(child)
    lock = _token(token)
    keys = queue.keys
    reply = queue.connection.run_script(
        "awaitChildren",
        (
            keys.active,
            keys.waiting_children,
            keys.job(job_id),
            keys.job_sub(job_id, "dependencies"),
            keys.job_sub(job_id, "unsuccessful"),
            keys.stalled,
            keys.events,
            keys.op(queue.next_token()),
        ),
        (lock, child_key, _now(), job_id, OUTCOME_TTL_MS),
    )
    code = int(reply)
    if code < 0:
        refuse_active(queue, job_id, code, "moveToWaitingChildren")
    if code == 1:
        return False
    log.transition(
        "job.waiting_children",
        queue=queue.name,
        job_id=job_id,
        from_state="active",
        to_state="waiting-children",
    )
    return True


def move_to_wait(
    queue: QueueContext, job_id: str, token: str | None = None, *, priority: int = 0
) -> int:
    """Put an active job back to waiting (no attempt counted); returns the limiter's TTL ms.
    ``priority`` (the job's) only names the state it lands in, in the log."""
    lock = _token(token)
    keys = queue.keys
    reply = queue.connection.run_script(
        "returnToWait",
        (
            keys.active,
            keys.wait,
            keys.stalled,
            keys.meta,
            keys.limiter,
            keys.prioritized,
            keys.marker,
            keys.events,
            keys.job(job_id),
            keys.op(queue.next_token()),
        ),
        (job_id, lock, OUTCOME_TTL_MS),
    )
    ttl = int(reply)
    if ttl < 0:
        refuse_active(queue, job_id, ttl, "moveJobFromActiveToWait")
    log.transition(
        "job.waiting",
        queue=queue.name,
        job_id=job_id,
        from_state="active",
        to_state="prioritized" if priority > 0 else "waiting",
        rate_limit_ttl_ms=ttl,
    )
    return ttl


# -- rate limits ----------------------------------------------------------------------------


def rate_limit(queue: QueueContext, expire_ms: int) -> None:
    """Rate-limit the whole queue for ``expire_ms`` ms (BullMQ's ``rateLimit``)."""
    if isinstance(expire_ms, bool) or not isinstance(expire_ms, int) or expire_ms <= 0:
        raise InvalidArgument(f"expire_ms must be a positive integer, got {expire_ms!r}")
    queue.connection.execute("SET", queue.keys.limiter, MAX_SAFE_INTEGER, "PX", expire_ms)
    log.event("queue.rate_limited", queue=queue.name, expire_ms=expire_ms)


def rate_limit_ttl(queue: QueueContext, max_jobs: int | None = None) -> int:
    """BullMQ's ``getRateLimitTtl``: ms the queue stays limited (0 none; -2 no limiter key)."""
    if max_jobs is not None and (
        isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 0
    ):
        raise InvalidArgument(f"max_jobs must be a non-negative integer, got {max_jobs!r}")
    keys = queue.keys
    reply = queue.connection.run_script(
        "rateLimitTtl", (keys.limiter, keys.meta), (str(max_jobs or 0),)
    )
    return int(reply)


def remove_rate_limit_key(queue: QueueContext) -> int:
    """Delete the rate limiter key (lifts a current rate limit); 1 if it existed."""
    return int(queue.connection.execute("DEL", queue.keys.limiter))


# -- metrics --------------------------------------------------------------------------------


def max_data_points(metrics: Any) -> str:
    """The worker's ``metrics`` option as finishJob's argument ("" = no metrics)."""
    if metrics is None:
        return ""
    points = metrics.get("maxDataPoints") if isinstance(metrics, Mapping) else None
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidArgument(
            f"metrics must be like {{'maxDataPoints': 1440}} (a positive int), got {metrics!r}"
        )
    return str(points)


def get_metrics(queue: QueueContext, kind: str, start: int = 0, end: int = -1) -> dict[str, Any]:
    """BullMQ's ``getMetrics``: {"meta": {count, prevTS, prevCount}, "data": [...], "count"}."""
    if kind not in METRIC_KINDS:
        raise InvalidArgument(f"metrics type must be 'completed' or 'failed', got {kind!r}")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    keys = queue.keys
    meta, data, length = queue.connection.pipeline(
        [
            ("HMGET", keys.metrics(kind), "count", "prevTS", "prevCount"),
            ("LRANGE", keys.metrics_data(kind), start, end),
            ("LLEN", keys.metrics_data(kind)),
        ]
    )

    def number(value: Any) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0

    return {
        "meta": {
            "count": number(meta[0]),
            "prevTS": number(meta[1]),
            "prevCount": number(meta[2]),
        },
        "data": [number(point) for point in data],
        "count": int(length),
    }
