"""The dashboard's actions. Each one is the library call Python code would make (``Job.retry``,
``Queue.retry_jobs``, ...), so it is exactly-once and logged like any other caller's."""

from __future__ import annotations

import json
import queue as queue_module
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BullMQSyncError, InvalidArgument
from .http import HTTPError

if TYPE_CHECKING:
    from ..queue import Queue

BULK_BATCH = 1000
"""Jobs per script call of retry-all / promote-all (each call one atomic step)."""
MAX_SELECTED = 1000


@dataclass
class Outcome:
    """What an action did: a count and a short message built from fixed words."""

    action: str
    count: int
    failed: int = 0


def _job(queue: Queue, job_id: str):  # type: ignore[no-untyped-def]
    if not job_id:
        raise HTTPError(400, "missing job id")
    job = queue.get_job(job_id)
    if job is None:
        raise HTTPError(404, "no such job")
    return job


def _priority(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise HTTPError(400, "priority must be a whole number") from None
    if not 0 <= value <= 2_097_152:
        raise HTTPError(400, "priority must be between 0 and 2097152")
    return value


def _grace_ms(amount: str, unit: str) -> int:
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    try:
        value = int(amount)
    except ValueError:
        raise HTTPError(400, "age must be a whole number") from None
    if value < 0 or unit not in units:
        raise HTTPError(400, "age must be a non-negative number of s, m, h or d")
    return value * units[unit]


def run_single(queue: Queue, action: str, form: Callable[[str], str], ids: list[str]) -> Outcome:
    """Actions on one job or a selection; raises ``HTTPError`` on bad input."""
    if action == "retry":
        state = form("state") or "failed"
        if state not in ("failed", "completed"):
            raise HTTPError(400, "only failed or completed jobs can be retried")
        _job(queue, form("id")).retry(state)
        return Outcome(action, 1)
    if action == "retry-selected":
        state = form("state") or "failed"
        if state not in ("failed", "completed"):
            raise HTTPError(400, "only failed or completed jobs can be retried")
        if not ids:
            raise HTTPError(400, "no jobs selected")
        if len(ids) > MAX_SELECTED:
            raise HTTPError(400, f"at most {MAX_SELECTED} jobs at once")
        done = missed = 0
        for job_id in dict.fromkeys(ids):
            try:
                job = queue.get_job(job_id) if job_id else None
                if job is None:
                    missed += 1
                    continue
                job.retry(state)
                done += 1
            except BullMQSyncError:  # moved or removed by someone else meanwhile
                missed += 1
        return Outcome(action, done, missed)
    if action == "promote":
        _job(queue, form("id")).promote()
        return Outcome(action, 1)
    if action == "remove":
        if not _job(queue, form("id")).remove():
            raise HTTPError(409, "the job is locked by a worker and was not removed")
        return Outcome(action, 1)
    if action == "priority":
        _job(queue, form("id")).change_priority(_priority(form("priority")))
        return Outcome(action, 1)
    if action == "pause":
        queue.pause()
        return Outcome(action, 1)
    if action == "resume":
        queue.resume()
        return Outcome(action, 1)
    if action == "clean":
        state = form("state")
        if state not in ("completed", "failed", "delayed", "waiting", "prioritized"):
            raise HTTPError(400, "this state cannot be cleaned")
        grace = _grace_ms(form("age") or "0", form("unit") or "h")
        return Outcome(action, len(queue.clean(grace, 0, state)))
    raise HTTPError(404, "no such action")


BULK_ACTIONS = {"retry-all": "failed", "retry-all-completed": "completed", "promote-all": "delayed"}


def run_bulk(queue: Queue, action: str, progress: Callable[[int], None] | None = None) -> Outcome:
    """Retry every failed/completed job or promote every delayed one, in batches."""
    if action == "promote-all":
        return Outcome(action, queue.promote_jobs(BULK_BATCH, progress=progress))
    state = BULK_ACTIONS.get(action)
    if state is None:
        raise HTTPError(404, "no such action")
    return Outcome(action, queue.retry_jobs(state, BULK_BATCH, progress=progress))


def stream_bulk(queue: Queue, action: str, total: int) -> Iterator[str]:
    """Run a bulk action in a thread and yield NDJSON progress lines as batches land."""
    updates: queue_module.Queue[tuple[str, int | str]] = queue_module.Queue()

    def work() -> None:
        try:
            outcome = run_bulk(queue, action, lambda moved: updates.put(("progress", moved)))
            updates.put(("done", outcome.count))
        except (BullMQSyncError, HTTPError, InvalidArgument) as exc:
            updates.put(("error", type(exc).__name__))

    threading.Thread(target=work, name="bullmq-dashboard-bulk", daemon=True).start()
    yield json.dumps({"total": total, "moved": 0}) + "\n"
    while True:
        kind, value = updates.get()
        if kind == "progress":
            yield json.dumps({"total": total, "moved": value}) + "\n"
        elif kind == "done":
            yield json.dumps({"total": total, "moved": value, "done": True}) + "\n"
            return
        else:
            yield json.dumps({"error": value}) + "\n"
            return
