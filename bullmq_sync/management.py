"""Queue-wide operations: bulk retry and promotion (in bounded batches), pause/resume,
drain, clean and obliterate. Each script call is one atomic, exactly-once step."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import log
from .connection import OUTCOME_TTL_MS
from .context import pairs
from .errors import InvalidArgument, QueueHasActiveJobs
from .options import flag
from .states import JobState

if TYPE_CHECKING:
    from .context import QueueContext

ProgressCallback = Callable[[int], None]

_RETRYABLE = frozenset({"failed", "completed"})


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name} must be a positive integer, got {value!r}")
    return value


def _move_back(
    queue: QueueContext, state: str, batch: int, cutoff: str, progress: ProgressCallback | None
) -> int:
    keys = queue.keys
    total = 0
    batches = 0
    started = time.perf_counter()
    while True:
        reply = queue.connection.run_script(
            "moveJobsBackToWait",
            (
                keys.state(state),
                keys.wait,
                keys.meta,
                keys.active,
                keys.marker,
                keys.events,
                keys.op(queue.next_token()),
            ),
            (keys.base, batch, cutoff, state, OUTCOME_TTL_MS),
        )
        moved = int(reply[0])
        total += moved
        batches += 1
        if moved and progress is not None:
            progress(total)
        if moved < batch:
            break
    log.event(
        "queue.jobs_retried" if state != "delayed" else "queue.jobs_promoted",
        level=logging.INFO,
        queue=queue.name,
        from_state=state,
        to_state="waiting",
        count=total,
        batches=batches,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return total


def retry_jobs(
    queue: QueueContext,
    state: str | JobState = "failed",
    count: int = 1000,
    timestamp: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Move every failed (or completed) job finished at or before ``timestamp`` back to wait."""
    name = state.value if isinstance(state, JobState) else state
    if name not in _RETRYABLE:
        raise InvalidArgument(f"retry_jobs state must be 'failed' or 'completed', got {state!r}")
    batch = _positive("count", count)
    if timestamp is None:
        timestamp = int(time.time() * 1000)
    elif isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise InvalidArgument(f"timestamp must be a non-negative integer (ms), got {timestamp!r}")
    return _move_back(queue, name, batch, str(timestamp), progress)


def promote_jobs(
    queue: QueueContext, count: int = 1000, progress: ProgressCallback | None = None
) -> int:
    """Move every delayed job to wait now (oldest due first)."""
    return _move_back(queue, "delayed", _positive("count", count), "+inf", progress)


# -- pause / resume / drain / clean / obliterate ------------------------------------------

CLEANABLE = frozenset({"completed", "failed", "delayed", "prioritized", "wait", "paused", "active"})
_CLEAN_ALIASES = {"waiting": "wait"}
CLEAN_BATCH = 10_000
OBLITERATE_BATCH = 1000


def _pause_script(queue: QueueContext, action: str) -> int:
    keys = queue.keys
    return int(
        queue.connection.run_script(
            "pauseQueue",
            (
                keys.meta,
                keys.marker,
                keys.events,
                keys.wait,
                keys.paused,
                keys.prioritized,
                keys.delayed,
            ),
            (action,),
        )
    )


def pause(queue: QueueContext) -> None:
    """Pause the queue: workers take no new jobs; jobs keep arriving in wait (BullMQ 6)."""
    _pause_script(queue, "pause")
    log.event("queue.paused", queue=queue.name)


def resume(queue: QueueContext) -> None:
    """Resume the queue, merging a legacy BullMQ 5 ``paused`` list into wait."""
    merged = _pause_script(queue, "resume")
    log.event("queue.resumed", queue=queue.name, legacy_merged=merged)


def is_paused(queue: QueueContext) -> bool:
    """True when the queue's meta has the ``paused`` field."""
    return bool(queue.connection.execute("HEXISTS", queue.keys.meta, "paused"))


def _purge(queue: QueueContext, args: tuple[object, ...]) -> object:
    keys = queue.keys
    reply = queue.connection.run_script(
        "purgeJobs",
        (keys.events, keys.repeat, keys.op(queue.next_token())),
        (keys.base, args[0], int(time.time() * 1000), OUTCOME_TTL_MS, *args[1:]),
    )
    return reply[0]


def drain(queue: QueueContext, delayed: bool = False) -> int:
    """Delete every waiting and prioritized job (and delayed ones if asked); no events."""
    flag("delayed", delayed)
    reply = _purge(queue, ("drain", "1" if delayed else "0"))
    assert isinstance(reply, int)
    count = reply
    log.event("queue.drained", queue=queue.name, count=count, delayed=delayed)
    return count


def clean(
    queue: QueueContext, grace: int, limit: int = 0, state: str | JobState = "completed"
) -> list[str]:
    """Delete up to ``limit`` (0 = all) jobs of a state older than ``grace`` ms; their ids."""
    name = state.value if isinstance(state, JobState) else state
    name = _CLEAN_ALIASES.get(name, name)
    if name not in CLEANABLE:
        raise InvalidArgument(f"clean state must be one of {sorted(CLEANABLE)}, got {state!r}")
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise InvalidArgument(f"grace must be a non-negative number of ms, got {grace!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgument(f"limit must be a non-negative integer, got {limit!r}")
    cutoff = int(time.time() * 1000) - grace
    removed: list[str] = []
    while True:
        budget = CLEAN_BATCH if limit == 0 else min(CLEAN_BATCH, limit - len(removed))
        ids = _purge(queue, ("clean", name, cutoff, budget))
        assert isinstance(ids, list)
        removed.extend(str(i) for i in ids)
        if len(ids) < budget or (limit and len(removed) >= limit):
            break
    log.event("queue.cleaned", queue=queue.name, state=name, count=len(removed))
    return removed


_ACTIVE_JOBS = "Cannot obliterate queue {queue!r} with active jobs (use force=True)"


def obliterate(queue: QueueContext, force: bool = False, count: int = OBLITERATE_BATCH) -> None:
    """Pause, then delete the whole queue in bounded steps; refuses with active jobs unless
    ``force`` (the queue then stays paused, as BullMQ 6.7's obliterate leaves it)."""
    if not isinstance(force, bool):
        raise InvalidArgument(f"force must be a bool, got {force!r}")
    batch = _positive("count", count)
    flag("force", force)
    keys = queue.keys
    pause(queue)
    while True:
        reply = int(
            queue.connection.run_script(
                "obliterateQueue",
                (keys.meta, keys.active),
                (keys.base, batch, "1" if force else "0"),
            )
        )
        if reply == -2:
            log.event(
                "queue.obliterate_refused",
                level=logging.WARNING,
                queue=queue.name,
                code=reply,
                error=_ACTIVE_JOBS.format(queue=queue.name),
            )
            raise QueueHasActiveJobs(_ACTIVE_JOBS.format(queue=queue.name))
        if reply <= 0:
            break
    _drop_outcome_keys(queue)
    log.event("queue.obliterated", queue=queue.name, force=force)


def _drop_outcome_keys(queue: QueueContext) -> None:
    """Our short-lived call-outcome keys of the queue (they would expire on their own)."""
    cursor = "0"
    pattern = queue.keys.op("*")
    while True:
        cursor, found = queue.connection.execute("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        if found:
            queue.connection.execute("UNLINK", *found)
        if str(cursor) == "0":
            break


# -- global concurrency and rate limit (queue meta) ----------------------------------------


def set_global_concurrency(queue: QueueContext, concurrency: int) -> None:
    """At most ``concurrency`` jobs of this queue active at once, across every worker."""
    value = _positive("concurrency", concurrency)
    queue.connection.execute("HSET", queue.keys.meta, "concurrency", value)
    log.event("queue.global_concurrency_set", queue=queue.name, concurrency=value)


def remove_global_concurrency(queue: QueueContext) -> None:
    """Lift the global concurrency limit."""
    queue.connection.execute("HDEL", queue.keys.meta, "concurrency")
    log.event("queue.global_concurrency_removed", queue=queue.name)


def get_global_concurrency(queue: QueueContext) -> int | None:
    """The global concurrency limit, or None when there is none."""
    value = queue.connection.execute("HGET", queue.keys.meta, "concurrency")
    return int(value) if value is not None else None


def set_global_rate_limit(queue: QueueContext, max_jobs: int, duration: int) -> None:
    """At most ``max_jobs`` jobs started per ``duration`` ms, across every worker."""
    jobs = _positive("max_jobs", max_jobs)
    window = _positive("duration", duration)
    queue.connection.execute("HSET", queue.keys.meta, "max", jobs, "duration", window)
    log.event("queue.global_rate_limit_set", queue=queue.name, max=jobs, duration=window)


def get_meta(queue: QueueContext) -> dict[str, object]:
    """The queue meta hash as BullMQ's ``getMeta`` returns it (numbers parsed, ``paused``)."""
    stored = pairs(queue.connection.execute("HGETALL", queue.keys.meta))
    raw = {str(k): str(v) for k, v in stored.items()}
    meta: dict[str, object] = {
        k: v
        for k, v in raw.items()
        if k not in ("concurrency", "max", "duration", "paused", EVENTS_MAX_LEN_FIELD)
    }
    for field, name in (
        ("concurrency", "concurrency"),
        (EVENTS_MAX_LEN_FIELD, "maxLenEvents"),
        ("max", "max"),
        ("duration", "duration"),
    ):
        if raw.get(field):
            meta[name] = int(float(raw[field]))
    meta["paused"] = raw.get("paused") == "1"
    return meta


def get_global_rate_limit(queue: QueueContext) -> dict[str, int] | None:
    """``{"max", "duration"}`` when both meta fields are set, else None (as BullMQ)."""
    max_jobs, duration = queue.connection.execute("HMGET", queue.keys.meta, "max", "duration")
    if max_jobs and duration:
        return {"max": int(max_jobs), "duration": int(duration)}
    return None


def remove_global_rate_limit(queue: QueueContext) -> None:
    """Lift the global rate limit."""
    queue.connection.execute("HDEL", queue.keys.meta, "max", "duration")
    log.event("queue.global_rate_limit_removed", queue=queue.name)


# -- queue meta written by the Queue constructor (Node's metaValues) ------------------------

EVENTS_MAX_LEN_FIELD = "opts.maxLenEvents"
"""The meta field every events-writing script caps the stream with (``XADD MAXLEN ~``)."""


def set_events_max_len(queue: QueueContext, max_len: int) -> None:
    """Store Node's ``streams.events.maxLen`` in the queue meta, as Node's Queue does."""
    queue.connection.execute("HSET", queue.keys.meta, EVENTS_MAX_LEN_FIELD, max_len)
    log.event("queue.events_max_len_set", queue=queue.name, max_len=max_len)


def get_version(queue: QueueContext) -> str | None:
    """The meta ``version`` field a Node BullMQ Queue writes, or None (we write none)."""
    value = queue.connection.execute("HGET", queue.keys.meta, "version")
    return None if value is None else str(value)
