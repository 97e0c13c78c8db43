"""Jobs added and managed by bullmq_sync, processed and read by a real Node BullMQ 6."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    import nodebullmq
except ImportError:  # tests/ on sys.path
    from interop import nodebullmq  # type: ignore[no-redef]

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def node(redis_url: str) -> Iterator[nodebullmq.NodeBullMQ]:
    nodebullmq.require_node(6)
    with nodebullmq.NodeBullMQ(redis_url, major=6) as driver:
        yield driver


def _order(outcomes, event="completed"):
    return [o["jobId"] for o in outcomes if o["event"] == event]


def test_node_worker_honours_priority_and_lifo(node, queue, prefix):
    a = queue.add("a")
    b = queue.add("b")
    c = queue.add("c", lifo=True)
    p3 = queue.add("p3", priority=3)
    p1 = queue.add("p1", {}, {"priority": 1})
    p2 = queue.add("p2", priority=2)
    out = node.call("process", queue="q", prefix=prefix, count=6, concurrency=1, timeoutMs=15000)
    assert _order(out) == [c.id, a.id, b.id, p1.id, p2.id, p3.id]


def test_node_worker_honours_delay(node, queue, prefix):
    job = queue.add("later", delay=1200)
    out = node.call("process", queue="q", prefix=prefix, count=1, timeoutMs=15000)
    assert _order(out) == [job.id]
    done = queue.get_job(job.id)
    assert done.processed_on >= job.timestamp + 1200


def test_attempts_backoff_and_remove_on_complete(node, queue, prefix):
    job = queue.add("flaky", {"__failTimes": 2, "__failMessage": "nope"}, attempts=3,
                    backoff={"type": "exponential", "delay": 200}, remove_on_complete=True)
    out = node.call("process", queue="q", prefix=prefix, count=3, timeoutMs=20000)
    assert [o["event"] for o in out] == ["failed", "failed", "completed"]
    assert queue.get_job(job.id) is None
    gone = queue.add("doomed", {"__fail": "bad"}, {"attempts": 2, "backoff": 100,
                                                    "removeOnFail": {"count": 0}})
    kept = queue.add("kept", {"__fail": "bad"}, attempts=1)
    out = node.call("process", queue="q", prefix=prefix, count=3, timeoutMs=20000)
    assert _order(out, "failed") == [gone.id, kept.id, gone.id] or \
        sorted(_order(out, "failed")) == sorted([gone.id, gone.id, kept.id])
    assert queue.get_job(gone.id) is None
    failed = queue.get_job(kept.id)
    assert failed.failed_reason == "bad" and failed.attempts_made == 1


def test_node_failed_jobs_bulk_retried_then_completed(node, queue, prefix):
    ids = node.call("addBulk", queue="q", prefix=prefix,
                    jobs=[{"name": f"n{i}", "data": {"__failTimes": 1}} for i in range(25)])["ids"]
    out = node.call("process", queue="q", prefix=prefix, count=25, concurrency=5, timeoutMs=20000)
    assert sorted(_order(out, "failed")) == sorted(ids)
    assert queue.get_job_counts("failed", "waiting") == {"failed": 25, "waiting": 0}
    assert queue.retry_jobs(count=10) == 25
    assert queue.get_job_counts("failed", "waiting") == {"failed": 0, "waiting": 25}
    out = node.call("process", queue="q", prefix=prefix, count=25, concurrency=5, timeoutMs=20000)
    assert sorted(_order(out)) == sorted(ids)
    assert node.call("getJobCounts", queue="q", prefix=prefix, types=["completed", "failed"]) == {
        "completed": 25, "failed": 0}


def test_counts_and_lists_agree_with_node(node, queue, prefix):
    queue.add_bulk([{"name": "w", "data": {"__fail": "x"} if i % 3 == 0 else {}} for i in range(9)])
    node.call("add", queue="q", prefix=prefix, name="nodeadd", data={}, opts={"priority": 4})
    queue.add("delayed", delay=60_000)
    queue.add("prio", priority=2)
    node.call("process", queue="q", prefix=prefix, count=5, concurrency=1, timeoutMs=15000)
    node.call("add", queue="q", prefix=prefix, name="nodelifo", data={}, opts={"lifo": True})
    queue.add("mine", job_id="custom-1")
    types = ["active", "completed", "delayed", "failed", "prioritized", "waiting",
             "waiting-children"]
    assert queue.get_job_counts() == node.call("getJobCounts", queue="q", prefix=prefix, types=types)
    for job_types, asc in [(["waiting"], True), (["waiting"], False), (["completed", "failed"], False),
                           (["prioritized", "delayed"], True), (None, False)]:
        ours = [j.id for j in queue.get_jobs(job_types, 0, -1, asc)]
        theirs = [j["id"] for j in node.call("getJobs", queue="q", prefix=prefix, types=job_types,
                                             asc=asc)]
        assert ours == theirs, (job_types, asc)
    page = [j.id for j in queue.get_waiting(1, 2)]
    theirs = [j["id"] for j in node.call("getJobs", queue="q", prefix=prefix, types=["waiting"],
                                         start=1, end=2, asc=True)]
    assert page == theirs


def test_node_reads_our_job_options(node, queue, prefix):
    job = queue.add("x", {"k": "ü"}, {"attempts": 3, "backoff": {"type": "fixed", "delay": 5,
                                                                  "jitter": 0.5}},
                    remove_on_fail={"age": 10, "count": 2}, job_id="opt-1", keep_logs=4)
    seen = node.call("getJob", queue="q", prefix=prefix, jobId=job.id)
    assert seen["state"] == "waiting"
    assert seen["json"]["data"] == {"k": "ü"} or seen["json"]["data"] == '{"k":"ü"}'
    assert queue.get_job(job.id).opts == {"attempts": 3, "backoff": {"type": "fixed", "delay": 5,
                                                                      "jitter": 0.5},
                                          "removeOnFail": {"age": 10, "count": 2},
                                          "jobId": "opt-1", "keepLogs": 4}


def test_node_pause_and_our_resume(node, queue, prefix):
    queue.add("a")
    node.call("pause", queue="q", prefix=prefix)
    assert queue.is_paused()
    queue.resume()
    assert node.call("isPaused", queue="q", prefix=prefix) is False
    out = node.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert _order(out) == ["1"]


def test_node_sees_our_duplicate_and_counter(node, queue, prefix):
    queue.add("a", job_id="dup")
    queue.add("a", job_id="dup")
    got = node.call("add", queue="q", prefix=prefix, name="n", data={})
    assert got["id"] == "3"


def test_global_concurrency_shared_with_node(node, queue, prefix):
    """The same meta field both ways, and a Node worker honours the limit we set."""
    queue.set_global_concurrency(2)
    node.call("setGlobalConcurrency", queue="q", prefix=prefix, concurrency=5)
    assert queue.get_global_concurrency() == 5
    queue.set_global_concurrency(1)
    for i in range(4):
        queue.add("slow", {"__sleepMs": 150, "i": i})
    outcomes = node.call("process", queue="q", prefix=prefix, count=4, concurrency=4, timeoutMs=15000)
    assert [o["event"] for o in outcomes] == ["completed"] * 4
    jobs = sorted(queue.get_completed(), key=lambda j: j.processed_on or 0)
    # one at a time: each job started after the previous one finished
    for earlier, later in zip(jobs, jobs[1:]):
        assert later.processed_on >= earlier.finished_on
