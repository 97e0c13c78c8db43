"""Structured events for every job state transition this client makes.

The library never configures logging: events go through structlog wrapping the stdlib logger
``bullmq_sync`` (which has a ``NullHandler``). An app that configured structlog gets structured
events; an app using plain ``logging`` gets ordinary records; an app that did neither sees
nothing. Events are built only when the logger is enabled for their level, so a disabled
logger costs one check. Job data and passwords are never logged.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

STDLIB_LOGGER = logging.getLogger("bullmq_sync")
STDLIB_LOGGER.addHandler(logging.NullHandler())

_log = structlog.wrap_logger(STDLIB_LOGGER)


def enabled(level: int = logging.INFO) -> bool:
    """True when events of ``level`` would be emitted (lets hot paths skip building them)."""
    return STDLIB_LOGGER.isEnabledFor(level)


def transition(
    event: str,
    *,
    queue: str,
    job_id: str,
    from_state: str | None,
    to_state: str | None,
    **fields: Any,
) -> None:
    """Log one job state transition, e.g. ``job.retried`` from ``failed`` to ``waiting``."""
    if STDLIB_LOGGER.isEnabledFor(logging.INFO):
        _log.info(
            event, queue=queue, job_id=job_id, from_state=from_state, to_state=to_state, **fields
        )


def refused(event: str, *, queue: str, job_id: str, code: int, error: str, **fields: Any) -> None:
    """Log a transition Redis refused with a BullMQ error code."""
    if STDLIB_LOGGER.isEnabledFor(logging.WARNING):
        _log.warning(event, queue=queue, job_id=job_id, code=code, error=error, **fields)


def event(name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log a non-transition event (a queue paused, a worker started, ...)."""
    if STDLIB_LOGGER.isEnabledFor(level):
        _log.log(level, name, **fields)


def redis_retry(
    *,
    attempt: int,
    error: BaseException | None,
    elapsed: float,
    where: str = "",
    budget: float = 0.0,
) -> None:
    """Log (once per call) the first transient Redis failure, which will be retried."""
    if STDLIB_LOGGER.isEnabledFor(logging.WARNING):
        _log.warning(
            "redis.retry",
            attempt=attempt,
            error=type(error).__name__ if error is not None else None,
            detail=str(error) if error is not None else None,
            elapsed_ms=round(elapsed * 1000, 1),
            where=where,
            budget_s=budget,
        )


def redis_retry_attempt(*, attempt: int, error: BaseException | None) -> None:
    """Log (at debug) one more failed attempt of a call being retried."""
    if STDLIB_LOGGER.isEnabledFor(logging.DEBUG):
        _log.debug(
            "redis.retry_attempt",
            attempt=attempt,
            error=type(error).__name__ if error is not None else None,
            detail=str(error) if error is not None else None,
        )


def redis_recovered(*, attempts: int, elapsed: float, where: str) -> None:
    """Log the summary of a call that succeeded after retries."""
    if STDLIB_LOGGER.isEnabledFor(logging.INFO):
        _log.info(
            "redis.recovered", attempts=attempts, elapsed_ms=round(elapsed * 1000, 1), where=where
        )


def redis_gave_up(*, attempts: int, elapsed: float, where: str) -> None:
    """Log the summary of a call that spent its retry budget."""
    if STDLIB_LOGGER.isEnabledFor(logging.WARNING):
        _log.warning(
            "redis.gave_up", attempts=attempts, elapsed_ms=round(elapsed * 1000, 1), where=where
        )


def script_reloaded(name: str) -> None:
    """Log that Redis had lost a script (NOSCRIPT) and it was loaded again."""
    if STDLIB_LOGGER.isEnabledFor(logging.INFO):
        _log.info("script.reloaded", script=name)
