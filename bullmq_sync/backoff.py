"""Retry decisions of a failed attempt: BullMQ's backoff strategies. Pure, no I/O.

``retry_delay`` answers what BullMQ 6.7's ``Job.shouldRetryJob`` answers: no retry, retry at
once, or retry after a delay in ms.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

BackoffStrategy = Callable[[int, str, BaseException, Any], "int | float | None"]
"""``strategy(attempts_made, backoff_type, error, job) -> delay ms`` (-1: do not retry)."""

NO_RETRY = -1


def normalize_backoff(value: Any) -> dict[str, Any] | None:
    """A stored ``backoff`` option as ``{"type", "delay", "jitter"?}`` (a number means fixed)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return {"type": "fixed", "delay": value}
    if isinstance(value, dict) and value:
        return value
    return None


def builtin_delay(backoff: dict[str, Any], attempts_made: int) -> int | None:
    """Delay of a ``fixed`` / ``exponential`` backoff for the attempt ``attempts_made`` (1-based).

    None when the type is not built in. Jitter j picks uniformly in [d * (1 - j), d).
    """
    kind = backoff.get("type")
    delay = float(backoff.get("delay") or 0)
    jitter = float(backoff.get("jitter") or 0)
    if kind == "fixed":
        base = delay
    elif kind == "exponential":
        base = float(round_half_up(2 ** (attempts_made - 1) * delay))
    else:
        return None
    if jitter > 0:
        return math.floor(random.random() * base * jitter + base * (1 - jitter))
    return int(base)


def round_half_up(value: float) -> int:
    """JavaScript's ``Math.round``."""
    return math.floor(value + 0.5)


def retry_delay(
    *,
    attempts: int,
    attempts_made: int,
    attempts_started: int,
    max_started_attempts: int | None,
    unrecoverable: bool,
    backoff: Any,
    error: BaseException,
    job: Any,
    strategy: BackoffStrategy | None,
) -> int | None:
    """None: fail for good; 0: retry at once; n > 0: retry after n ms.

    ``attempts_made`` is the job's count before this failure. Raises ValueError for a backoff
    type that is neither built in nor handled by ``strategy`` (BullMQ throws there too).
    """
    if unrecoverable or attempts_made + 1 >= attempts:
        return None
    if max_started_attempts and max_started_attempts <= attempts_started:
        return None
    spec = normalize_backoff(backoff)
    if spec is None:
        return 0
    delay = builtin_delay(spec, attempts_made + 1)
    if delay is None:
        if strategy is None:
            raise ValueError(
                f"Unknown backoff strategy {spec.get('type')}. If a custom backoff strategy is "
                "used, pass it to the Worker as backoff_strategy."
            )
        custom = strategy(attempts_made + 1, str(spec.get("type")), error, job)
        if custom is None:
            return 0
        delay = int(custom)
    if delay == NO_RETRY:
        return None
    return max(delay, 0)
