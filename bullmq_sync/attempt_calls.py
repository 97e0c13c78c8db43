"""KEYS and ARGV of the scripts that take and end an attempt, one builder each.

``fetchJob`` (take the next job), ``finishJob`` (completed or failed for good, maybe taking
the next), ``delayActiveJob`` (a backoff, or a processor's own move to delayed) and
``retryActiveJob`` (straight back to wait). The worker's parts, manual processing
(``manual.py``) and ``worker_steps`` build their calls here, so they all send the same
arguments. Pure: nothing here talks to Redis.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .connection import OUTCOME_TTL_MS
from .context import StoredJob, pairs
from .options import keep_policy

if TYPE_CHECKING:
    from .backoff import BackoffStrategy
    from .context import QueueContext

DEFAULT_LOCK_MS = 30000
"""Lock duration for a job not taken through a Worker (BullMQ's default lockDuration)."""

Call = tuple[tuple[str, ...], tuple[Any, ...]]
"""A script call's KEYS and ARGV."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Settings:
    """The worker options these scripts read (BullMQ's job reads them as ``job.queue.opts``);
    ``Settings()`` holds BullMQ's defaults, for a job taken without a worker."""

    lock_ms: int = DEFAULT_LOCK_MS
    limit_max: str = ""
    limit_window: str = ""
    name: str = ""
    remove_on_complete: Any = None
    remove_on_fail: Any = None
    max_metrics: str = ""
    backoff_strategy: BackoffStrategy | None = None
    max_started_attempts: int | None = None


def limiter_args(limiter: Mapping[str, Any] | None) -> tuple[str, str]:
    """A worker's ``{"max", "duration"}`` limiter as the scripts' (max, window) arguments."""
    limits = limiter or {}
    return (
        str(limits["max"]) if limits.get("max") is not None else "",
        str(limits["duration"]) if limits.get("duration") is not None else "",
    )


def fetch_call(queue: QueueContext, token: str, s: Settings) -> Call:
    """``lua/fetchJob.lua``: take the next job, locked with ``token``."""
    keys = queue.keys
    return (
        (
            keys.wait,
            keys.active,
            keys.prioritized,
            keys.events,
            keys.limiter,
            keys.delayed,
            keys.meta,
            keys.pc,
            keys.marker,
        ),
        (keys.base, now_ms(), token, s.lock_ms, s.limit_max, s.limit_window, s.name),
    )


def fetched(reply: Any) -> StoredJob | None:
    """The job a fetching reply handed over (``fetchJob``, or a finishing call that fetched
    the next one), or None."""
    if isinstance(reply, list) and reply and isinstance(reply[0], list):
        return StoredJob(str(reply[1]), pairs(reply[0]))
    return None


def finish_call(
    queue: QueueContext,
    job_id: str,
    opts: Mapping[str, Any],
    token: str,
    target: str,
    value: str,
    stack: str,
    fetch_next: bool,
    s: Settings,
) -> Call:
    """``lua/finishJob.lua``: ``target`` is "completed" (``value`` the JSON return value) or
    "failed" (``value`` the reason, ``stack`` the JSON stacktrace). The job's own keep option
    wins over the worker's; the worker's metrics are counted when it collects them."""
    keys = queue.keys
    option = "removeOnComplete" if target == "completed" else "removeOnFail"
    policy = opts.get(option)
    if policy is None:
        policy = s.remove_on_complete if target == "completed" else s.remove_on_fail
    count, age, limit = keep_policy(policy)
    call_keys = (
        keys.wait,
        keys.active,
        keys.prioritized,
        keys.events,
        keys.stalled,
        keys.limiter,
        keys.delayed,
        keys.meta,
        keys.pc,
        keys.state(target),
        keys.job(job_id),
        keys.marker,
        keys.op(queue.next_token()),
    )
    args = (
        job_id,
        now_ms(),
        target,
        value,
        keys.base,
        token,
        count,
        age,
        limit,
        int(opts.get("attempts") or 0),
        stack,
        "1" if fetch_next else "0",
        s.lock_ms,
        s.limit_max,
        s.limit_window,
        s.name,
        OUTCOME_TTL_MS,
    )
    if s.max_metrics:
        return (*call_keys, keys.metrics(target)), (*args, s.max_metrics)
    return call_keys, args


def delay_call(
    queue: QueueContext,
    job_id: str,
    token: str,
    delay: int,
    *,
    reason: str = "",
    stack: str = "",
    fetch_next: bool = False,
    s: Settings | None = None,
    skip_attempt: bool = False,
    now: int | None = None,
) -> Call:
    """``lua/delayActiveJob.lua``: a failed attempt's backoff (``reason``, ``stack``; may take
    the next job), or with ``skip_attempt`` a processor's own move (no attempt counted)."""
    keys = queue.keys
    lock_ms, limit_max, limit_window, name = (
        (0, "", "", "") if s is None else (s.lock_ms, s.limit_max, s.limit_window, s.name)
    )
    args: tuple[Any, ...] = (
        keys.base,
        now_ms() if now is None else now,
        job_id,
        token,
        delay,
        reason,
        stack,
        "1" if fetch_next else "0",
        lock_ms,
        limit_max,
        limit_window,
        name,
        OUTCOME_TTL_MS,
    )
    return delay_keys(queue, job_id), ((*args, "1") if skip_attempt else args)


def delay_keys(queue: QueueContext, job_id: str) -> tuple[str, ...]:
    """The KEYS of ``lua/delayActiveJob.lua`` for a job."""
    keys = queue.keys
    return (
        keys.marker,
        keys.active,
        keys.prioritized,
        keys.delayed,
        keys.job(job_id),
        keys.events,
        keys.meta,
        keys.stalled,
        keys.wait,
        keys.limiter,
        keys.pc,
        keys.op(queue.next_token()),
    )


def retry_call(
    queue: QueueContext, job_id: str, token: str, lifo: bool, reason: str, stack: str
) -> Call:
    """``lua/retryActiveJob.lua``: a failed attempt straight back to wait (no backoff)."""
    keys = queue.keys
    return (
        (
            keys.active,
            keys.wait,
            keys.meta,
            keys.job(job_id),
            keys.events,
            keys.delayed,
            keys.prioritized,
            keys.pc,
            keys.marker,
            keys.stalled,
            keys.op(queue.next_token()),
        ),
        (keys.base, now_ms(), "1" if lifo else "0", job_id, token, reason, stack, OUTCOME_TTL_MS),
    )
