"""Waiting for results, workers, counts and metrics beside Node BullMQ 6.7, both ways."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Job, JobFailed, Queue, QueueEvents, Worker

pytestmark = pytest.mark.interop


def node_queue(node: Any, prefix: str, method: str, *args: Any, queue: str = "q") -> Any:
    return node.call("queueMethod", queue=queue, prefix=prefix, method=method, args=list(args))


# -- wait_until_finished -----------------------------------------------------------------


def test_our_waiters_see_node_worker_outcomes(node6: Any, redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        jobs = [
            queue.add("x", {"__return": {"n": n}} if n % 4 else {"__fail": f"boom {n}"})
            for n in range(24)
        ]
        results: dict[str, Any] = {}
        lock = threading.Lock()

        def wait(job: Job) -> None:
            try:
                value: Any = job.wait_until_finished(events, timeout=30)
            except JobFailed as exc:
                value = ("failed", exc.failed_reason)
            with lock:
                results[job.id] = value

        threads = [threading.Thread(target=wait, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        node6.call("process", queue="q", prefix=prefix, count=24, concurrency=4, timeoutMs=20000)
        for thread in threads:
            thread.join(30)
    assert results == {
        job.id: ({"n": n} if n % 4 else ("failed", f"boom {n}")) for n, job in enumerate(jobs)
    }


def test_node_wait_until_finished_sees_our_worker(node6: Any, redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        good = queue.add("x", {"n": 1})
        bad = queue.add("x", {"n": 2})
        replies: dict[str, Any] = {}

        def node_wait(job_id: str) -> None:
            replies[job_id] = node6.call(
                "waitUntilFinished", queue="q", prefix=prefix, jobId=job_id, ttl=20000,
                readyHandle=f"{prefix}-{job_id}", timeout=30,
            )

        threads = [threading.Thread(target=node_wait, args=(j.id,)) for j in (good, bad)]
        for thread in threads:
            thread.start()
        for job in (good, bad):
            wait_for(lambda j=job: node6.call("isReady", handle=f"{prefix}-{j.id}"))

        def processor(job: Job) -> Any:
            if job.data["n"] == 2:
                raise RuntimeError("python says no")
            return {"from": "python"}

        with Worker("q", processor, connection=redis_url, prefix=prefix):
            for thread in threads:
                thread.join(30)
    assert replies[good.id] == {"returnvalue": {"from": "python"}}
    assert replies[bad.id] == {"error": "python says no"}


# -- workers ---------------------------------------------------------------------------


def test_get_workers_lists_node_and_python_workers_both_ways(
    node6: Any, redis_url: str, prefix: str
) -> None:
    node6.call("startWorker", queue="q", prefix=prefix, handle=f"{prefix}-named",
               workerOpts={"name": "node-w"})
    node6.call("startWorker", queue="q", prefix=prefix, handle=f"{prefix}-plain")
    try:
        with Queue("q", connection=redis_url, prefix=prefix) as queue, Worker(
            "q", lambda job: None, connection=redis_url, prefix=prefix, name="py-w"
        ), Worker("q", lambda job: None, connection=redis_url, prefix=prefix):
            wait_for(lambda: queue.get_workers_count() == 4)
            ours = sorted(w["rawname"] for w in queue.get_workers())
            theirs = sorted(w["rawname"] for w in node_queue(node6, prefix, "getWorkers"))
            assert ours == theirs
            base = f"{prefix}:cQ=="  # base64("q")
            assert ours == sorted([base, base, f"{base}:w:node-w", f"{base}:w:py-w"])
            assert node_queue(node6, prefix, "getWorkersCount") == 4
            for entry in queue.get_workers():
                assert entry["name"] == "q" and "addr" in entry and "id" in entry
            # another queue's workers are not ours
            with Queue("other", connection=redis_url, prefix=prefix) as other:
                assert other.get_workers() == []
    finally:
        node6.call("stopWorker", handle=f"{prefix}-named")
        node6.call("stopWorker", handle=f"{prefix}-plain")
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        wait_for(lambda: queue.get_workers_count() == 0)
        assert node_queue(node6, prefix, "getWorkersCount") == 0


def test_node_lists_our_queue_events_connection(node6: Any, redis_url: str, prefix: str) -> None:
    with QueueEvents("q", connection=redis_url, prefix=prefix) as events:
        events.start()
        wait_for(lambda: len(node_queue(node6, prefix, "getQueueEvents")) == 1)
        assert node_queue(node6, prefix, "getWorkers") == []
        with Queue("q", connection=redis_url, prefix=prefix) as queue:
            assert [e["rawname"] for e in queue.get_queue_events()] == [
                e["rawname"] for e in node_queue(node6, prefix, "getQueueEvents")
            ] == [f"{prefix}:cQ==:qe"]


# -- counts ----------------------------------------------------------------------------


def _populate(node: Any, prefix: str, redis_url: str) -> None:
    """Jobs in every state, half added by Node and half by us."""
    now = int(time.time() * 1000)
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.add("w", {})
        node.call("add", queue="q", prefix=prefix, name="w", data={})
        for priority in (1, 1, 3, 7):
            queue.add("p", {}, {"priority": priority})
        node.call("add", queue="q", prefix=prefix, name="p", data={}, opts={"priority": 3})
        for delay in (60_000, 120_000):
            queue.add("d", {}, {"delay": delay, "timestamp": now})
        node.call("add", queue="q", prefix=prefix, name="d", data={},
                  opts={"delay": 600_000, "timestamp": now})
    node.call("addFlow", prefix=prefix, flow={
        "name": "parent", "queueName": "q", "data": {},
        "children": [{"name": "kid", "queueName": "kids", "data": {}}]})


def test_counts_match_node(node6: Any, redis_url: str, prefix: str) -> None:
    _populate(node6, prefix, redis_url)
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        for method, expected in (
            ("getWaitingCount", 2),
            ("getActiveCount", 0),
            ("getDelayedCount", 3),
            ("getCompletedCount", 0),
            ("getFailedCount", 0),
            ("getPrioritizedCount", 5),
            ("getWaitingChildrenCount", 1),
        ):
            assert getattr(queue, method)() == expected == node_queue(node6, prefix, method), method
        cutoff = int(time.time() * 1000) + 90_000
        assert queue.get_delayed_count(cutoff) == 1 == node_queue(
            node6, prefix, "getDelayedCount", cutoff)
        asked = [7, 0, 1, 3, 1, 5]
        assert queue.getCountsPerPriority(asked) == node_queue(
            node6, prefix, "getCountsPerPriority", asked
        ) == {"7": 1, "0": 2, "1": 2, "3": 2, "5": 0}
        assert queue.get_counts_per_priority(asked) == {7: 1, 0: 2, 1: 2, 3: 2, 5: 0}


def test_counts_after_node_processing(node6: Any, redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        for n in range(5):
            queue.add("x", {"__fail": "no"} if n < 2 else {})
        node6.call("process", queue="q", prefix=prefix, count=5, timeoutMs=10000)
        assert (queue.get_completed_count(), queue.get_failed_count()) == (3, 2)
        assert node_queue(node6, prefix, "getCompletedCount") == 3
        assert node_queue(node6, prefix, "getFailedCount") == 2


# -- trimming events ---------------------------------------------------------------------


def test_trim_events_like_node(node6: Any, raw: Any, redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as ours:
        for n in range(700):
            ours.add("x", {}, {"jobId": f"j{n}"})
    node6.call("addBulk", queue="n", prefix=prefix,
               jobs=[{"name": "x", "data": {}, "opts": {"jobId": f"j{n}"}} for n in range(700)])
    assert raw.xlen(f"{prefix}:q:events") == raw.xlen(f"{prefix}:n:events") == 1400
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        removed = queue.trim_events(250)
    assert removed > 0 and 250 <= raw.xlen(f"{prefix}:q:events") < 1400
    assert removed == 1400 - raw.xlen(f"{prefix}:q:events")
    # Node reads the trimmed stream as already short enough; it trims its own the same way
    assert node_queue(node6, prefix, "trimEvents", 250) == 0
    node_removed = node_queue(node6, prefix, "trimEvents", 250, queue="n")
    assert abs(node_removed - removed) <= 100  # approximate trimming drops whole nodes


# -- Prometheus --------------------------------------------------------------------------


def test_prometheus_export_is_byte_for_byte_nodes(
    node6: Any, redis_url: str, prefix: str
) -> None:
    _populate(node6, prefix, redis_url)
    name = 'we"ird\\q\nname'
    with Queue(name, connection=redis_url, prefix=prefix) as odd:
        odd.add("x", {})
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.add("x", {"__fail": "no"})
        queue.add("x", {})
        node6.call("process", queue="q", prefix=prefix, count=2, timeoutMs=10000,
                   workerOpts={"metrics": {"maxDataPoints": 10}})
        assert queue.export_prometheus_metrics() == node_queue(
            node6, prefix, "exportPrometheusMetrics")
        labels = {"env": "prod", "quote": 'a"b', "slash": "c\\d", "nl": "e\nf", "n": 3,
                  "half": 1.5, "whole": 2.0, "yes": True, "none": None}
        ours = queue.exportPrometheusMetrics(labels)
        assert ours == node_queue(node6, prefix, "exportPrometheusMetrics", labels)
        assert "bullmq_job_completed_total" in ours and ', env="prod"' in ours
    with Queue(name, connection=redis_url, prefix=prefix) as odd:
        assert odd.export_prometheus_metrics() == node_queue(
            node6, prefix, "exportPrometheusMetrics", queue=name)
