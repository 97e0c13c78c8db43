"""Pure pieces of the Worker: keep policies and backoff math (no Redis)."""

from __future__ import annotations

import pytest

from bullmq_sync import InvalidArgument
from bullmq_sync.backoff import builtin_delay, normalize_backoff, retry_delay, round_half_up
from bullmq_sync.worker import keep_policy


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("", "", "")),
        (False, ("", "", "")),
        (True, ("0", "", "")),
        (5, ("5", "", "")),
        ({"count": 2, "age": 60}, ("2", "60", "")),
        ({"age": 10, "limit": 50}, ("", "10", "50")),
    ],
)
def test_keep_policy(value: object, expected: tuple[str, str, str]) -> None:
    assert keep_policy(value) == expected


def test_keep_policy_refuses_junk() -> None:
    with pytest.raises(InvalidArgument):
        keep_policy("always")


def test_backoff_normalization_and_js_rounding() -> None:
    assert normalize_backoff(500) == {"type": "fixed", "delay": 500}
    assert normalize_backoff(None) is None and normalize_backoff(True) is None
    assert round_half_up(2.5) == 3 and round_half_up(1.4999) == 1
    assert builtin_delay({"type": "exponential", "delay": 3}, 2) == 6
    assert builtin_delay({"type": "exponential", "delay": 1.5}, 1) == 2  # Math.round(1.5)
    assert builtin_delay({"type": "custom", "delay": 1}, 1) is None


def test_unknown_backoff_without_strategy_raises() -> None:
    with pytest.raises(ValueError, match="Unknown backoff strategy"):
        retry_delay(attempts=3, attempts_made=0, attempts_started=1, max_started_attempts=None,
                    unrecoverable=False, backoff={"type": "weird"}, error=RuntimeError(),
                    job=None, strategy=None)
