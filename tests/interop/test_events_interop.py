"""QueueEvents interop with Node BullMQ 6: we read Node's events, Node reads ours."""

from __future__ import annotations

import threading

import pytest

from bullmq_sync import Job, Queue
from bullmq_sync.events import QueueEvent, QueueEvents

try:
    import nodebullmq
except ImportError:
    from interop import nodebullmq  # type: ignore[no-redef]

pytestmark = pytest.mark.interop


@pytest.fixture
def node(node6: nodebullmq.NodeBullMQ) -> nodebullmq.NodeBullMQ:
    """The session's Node BullMQ 6 driver (tests/interop/conftest.py)."""
    return node6


def test_we_see_events_written_by_a_node_worker(node, connection, prefix):
    events = QueueEvents("q", connection=connection, prefix=prefix)
    value = {"__return": {"n": [1, 2]}}
    ok = node.call("add", queue="q", prefix=prefix, name="ok", data=value)["id"]
    bad = node.call(
        "add", queue="q", prefix=prefix, name="bad", data={"__fail": "nope"}, opts={"attempts": 1}
    )["id"]
    later = node.call(
        "add", queue="q", prefix=prefix, name="later", data={}, opts={"delay": 60000}
    )["id"]
    outcomes = node.call("process", queue="q", prefix=prefix, count=2, timeoutMs=10000)
    assert sorted(o["event"] for o in outcomes) == ["completed", "failed"]

    got = list(events.iter(block=True, timeout=1.0))
    events.close()
    by_job: dict[str, list[QueueEvent]] = {}
    for event in got:
        if event.job_id is not None:
            by_job.setdefault(event.job_id, []).append(event)
    assert [e.name for e in by_job[ok]] == ["added", "waiting", "active", "completed"]
    completed = by_job[ok][-1]
    assert completed.fields["returnvalue"] == {"n": [1, 2]} and completed.prev == "active"
    assert [e.name for e in by_job[bad]] == [
        "added",
        "waiting",
        "active",
        "failed",
        "retries-exhausted",
    ]
    assert by_job[bad][3].fields["failedReason"] == "nope"
    assert [e.name for e in by_job[later]] == ["added", "delayed"]
    delay = by_job[later][1].fields["delay"]
    assert isinstance(delay, int) and delay > by_job[later][1].timestamp


def test_node_queue_events_see_our_job_retry(node, connection, prefix):
    job_id = node.call(
        "add",
        queue="q",
        prefix=prefix,
        name="flaky",
        data={"__fail": "first"},
        opts={"attempts": 1},
    )["id"]
    node.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    node.call("eventsStart", queue="q", prefix=prefix)
    seen: list[QueueEvent] = []
    arrived = threading.Event()
    ours = QueueEvents("q", connection=connection, prefix=prefix)

    def on_waiting(event: QueueEvent) -> None:
        seen.append(event)
        arrived.set()

    ours.on(f"waiting:{job_id}", on_waiting)
    ours.start()
    queue = Queue("q", connection=connection, prefix=prefix)
    job = Job.from_id(queue, job_id)
    assert job is not None
    job.retry(reset_attempts_made=True)

    node_events = node.call(
        "eventsCollect", queue="q", prefix=prefix, waitFor={"event": "waiting", "jobId": job_id}
    )
    waiting = [e for e in node_events if e["event"] == "waiting"]
    assert waiting and waiting[0]["args"][0] == {"jobId": job_id, "prev": "failed"}
    assert arrived.wait(5)
    ours.close()
    assert [(e.name, e.job_id, e.prev) for e in seen] == [("waiting", job_id, "failed")]
    assert waiting[0]["args"][1] == seen[0].id  # same stream entry id on both sides
    node.call("eventsStop", queue="q", prefix=prefix)


def test_node_queue_events_see_our_producer_and_worker(node, connection, prefix):
    from bullmq_sync import Worker

    node.call("eventsStart", queue="q", prefix=prefix)
    queue = Queue("q", connection=connection, prefix=prefix)
    job = queue.add("sum", {"xs": [1, 2, 3]})
    worker = Worker("q", lambda j: {"sum": sum(j.data["xs"])}, connection=connection, prefix=prefix)
    try:
        collected = node.call(
            "eventsCollect",
            queue="q",
            prefix=prefix,
            waitFor={"event": "completed", "jobId": job.id},
            timeoutMs=10000,
        )
    finally:
        worker.close()
        node.call("eventsStop", queue="q", prefix=prefix)
    mine = [(e["event"], e["args"][0]) for e in collected if e.get("jobId") == job.id]
    assert mine == [
        ("added", {"jobId": job.id, "name": "sum"}),
        ("waiting", {"jobId": job.id}),
        ("active", {"jobId": job.id, "prev": "waiting"}),
        ("completed", {"jobId": job.id, "returnvalue": {"sum": 6}, "prev": "active"}),
    ]
