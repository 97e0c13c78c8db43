"""Small helpers shared by the tests: polling for a condition, reading a queue's events."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

from bullmq_sync.keys import OP_SEGMENT


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until it is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def events(raw: Any, prefix: str, queue: str = "q") -> list[dict[str, str]]:
    """Every entry of a queue's event stream, oldest first (fields only)."""
    return [fields for _, fields in raw.xrange(f"{prefix}:{queue}:events")]


def default_sigint() -> None:
    """``preexec_fn`` for a child that must answer Ctrl-C: a test run started in the
    background (a shell's ``cmd &``) ignores SIGINT, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# -- our call outcomes (fields of shared hashes, or plain keys) ---------------------------


def outcome_keys(raw: Any, prefix: str, queue: str = "q") -> list[str]:
    """Every stored call outcome of the queue: ``key#field`` for a field of a shared hash."""
    slots: list[str] = []
    for key in raw.scan_iter(match=f"{prefix}:{queue}:{OP_SEGMENT}*", count=1000):
        if raw.type(key) == "hash":
            slots.extend(f"{key}#{field}" for field in raw.hkeys(key))
        else:
            slots.append(key)
    return sorted(slots)


def outcome_of(raw: Any, slot: str) -> str | None:
    key, _, field = slot.rpartition("#")
    return raw.hget(key, field) if key else raw.get(slot)


def outcome_pttl(raw: Any, slot: str) -> int:
    key, _, _ = slot.rpartition("#")
    return int(raw.pttl(key or slot))
