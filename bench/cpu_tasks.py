"""The CPU-bound processor of bench_processes.py (module-level: child processes import it)."""

from __future__ import annotations

from typing import Any


def spin(n: int) -> int:
    """Pure-Python work proportional to ``n`` (no sleeping, no I/O)."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


def process(job: Any) -> int:
    return spin(int(job.data["n"]))
