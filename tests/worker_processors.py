"""Module-level processors that child processes import (``processes=N`` uses ``spawn``)."""

from __future__ import annotations

import os
import time
from typing import Any

from bullmq_sync import UnrecoverableError


def busy(job: Any) -> dict[str, Any]:
    """Pure-Python work for ``job.data["ms"]`` ms; reports where and when it ran."""
    start = time.time()
    deadline = time.perf_counter() + job.data.get("ms", 20) / 1000
    n = 0
    while time.perf_counter() < deadline:
        n += 1
    return {"pid": os.getpid(), "start": start, "end": time.time()}


def exit_first_time(job: Any) -> str:
    if job.attempts_made == 0:
        os._exit(job.data.get("code", 3))
    return "second attempt in a new child"


def hang_after_progress(job: Any) -> None:
    job.update_progress({"pid": os.getpid()})
    time.sleep(60)


def progress_and_log(job: Any) -> dict[str, Any]:
    job.update_progress(50)
    first = job.log("half way")
    second = job.log("done")
    job.updateProgress({"pct": 100})
    return {"rows": [first, second], "progress": job.progress}


def bad_progress(job: Any) -> str:
    try:
        job.update_progress(object())
    except Exception as exc:  # noqa: BLE001 - the parent refused it
        return f"refused: {type(exc).__name__}"
    return "accepted"


def pid(job: Any) -> int:
    return os.getpid()


def fail(job: Any) -> None:
    if job.data.get("fatal"):
        raise UnrecoverableError("no point retrying")
    raise LookupError("child boom")


def not_json(job: Any) -> object:
    return object()


def cancellable(job: Any, token: str, signal: Any) -> str:
    job.update_progress({"pid": os.getpid()})
    if signal.wait(20):
        signal.raise_if_cancelled()
    return "not cancelled"


INITIALIZED: list[int] = []


def initialize() -> None:
    INITIALIZED.append(os.getpid())


def was_initialized(job: Any) -> bool:
    return INITIALIZED == [os.getpid()]


def policy(job: Any) -> list[int]:
    """The child's pid and its scheduling policy (Linux)."""
    return [os.getpid(), os.sched_getscheduler(0)]
