"""The backoff is computed from the number of the attempt that just failed (1-based)."""

from __future__ import annotations

import pytest

from bullmq_sync.backoff import retry_delay


def delay_after(attempts_made: int, backoff: object, strategy=None) -> int | None:
    return retry_delay(
        attempts=10,
        attempts_made=attempts_made,
        attempts_started=attempts_made + 1,
        max_started_attempts=None,
        unrecoverable=False,
        backoff=backoff,
        error=RuntimeError("x"),
        job=None,
        strategy=strategy,
    )


@pytest.mark.parametrize("attempts_made,expected", [(0, 1000), (1, 2000), (2, 4000), (5, 32000)])
def test_exponential_backoff_doubles_from_the_first_failure(attempts_made, expected):
    # BullMQ: delay * 2^(attemptsMade - 1) with attemptsMade counting this failure.
    assert delay_after(attempts_made, {"type": "exponential", "delay": 1000}) == expected


def test_fixed_backoff_and_a_number():
    assert delay_after(3, {"type": "fixed", "delay": 700}) == 700
    assert delay_after(3, 700) == 700


def test_custom_strategy_gets_the_failed_attempt_number():
    seen = []

    def strategy(attempts_made, kind, error, job):
        seen.append((attempts_made, kind))
        return 10 * attempts_made

    assert delay_after(0, {"type": "mine"}, strategy) == 10
    assert delay_after(2, {"type": "mine"}, strategy) == 30
    assert seen == [(1, "mine"), (3, "mine")]


def test_last_attempt_is_not_retried():
    assert retry_delay(attempts=3, attempts_made=2, attempts_started=3, max_started_attempts=None,
                       unrecoverable=False, backoff={"type": "exponential", "delay": 1000},
                       error=RuntimeError(), job=None, strategy=None) is None
