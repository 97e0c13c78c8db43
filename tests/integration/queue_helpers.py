"""Shared helpers of the tests/integration/test_queue_*.py files."""

from __future__ import annotations

from typing import Any


def snapshot(raw: Any, prefix: str) -> dict[str, bytes]:
    """DUMP of every key under the prefix (compare before/after to prove nothing changed)."""
    out = {}
    for key in raw.scan_iter(match=f"{prefix}:*", count=1000):
        out[key] = raw.dump(key)
    return out

