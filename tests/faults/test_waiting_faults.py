"""wait_until_finished when the QueueEvents connection is dropped mid-wait."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Job, Queue, QueueEvents, Worker

pytestmark = pytest.mark.faults


def test_waiters_get_their_results_after_the_events_connection_is_killed(
    redis_url: str, prefix: str, raw: Any
) -> None:
    """The reader reconnects and resumes from the last id read: no event is skipped."""
    gate = threading.Event()

    def processor(job: Job) -> int:
        gate.wait(10)
        return int(job.data["n"]) * 3

    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix, block_ms=5000
    ) as events:
        jobs = [queue.add("x", {"n": n}) for n in range(10)]
        results: dict[str, Any] = {}

        def wait(job: Job) -> None:
            try:
                results[job.id] = job.wait_until_finished(events, timeout=30)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results[job.id] = repr(exc)

        threads = [threading.Thread(target=wait, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        qe_name = f"{prefix}:cQ==:qe"
        wait_for(lambda: any(c["name"] == qe_name for c in raw.client_list()))
        with Worker("q", processor, connection=redis_url, prefix=prefix, concurrency=10):
            (reader,) = [c for c in raw.client_list() if c["name"] == qe_name]
            raw.client_kill_filter(_id=reader["id"])  # the blocked XREAD loses its socket
            gate.set()  # the jobs finish while the reader reconnects
            for thread in threads:
                thread.join(30)
        assert results == {job.id: n * 3 for n, job in enumerate(jobs)}
        # the reconnected socket carries the same name
        wait_for(
            lambda: any(c["name"] == qe_name and c["id"] != reader["id"] for c in raw.client_list())
        )
