"""Our Worker beside Node BullMQ 6.7 on one queue: Node producers, Python and Node workers."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Job, Queue, UnrecoverableError, Worker

pytestmark = pytest.mark.interop


def data_driven(who: str, seen: list[str] | None = None) -> Callable[[Job], Any]:
    """The Node driver's processor conventions (nodebullmq.PROCESSOR_CONVENTIONS) in Python."""

    def processor(job: Job) -> Any:
        data = job.data if isinstance(job.data, dict) else {}
        if seen is not None:
            seen.append(job.id)
        if data.get("__sleepMs"):
            time.sleep(data["__sleepMs"] / 1000)
        if "__unrecoverable" in data:
            raise UnrecoverableError(str(data["__unrecoverable"]))
        if "__fail" in data:
            raise RuntimeError(str(data["__fail"]))
        if "__failTimes" in data and job.attempts_made < int(data["__failTimes"]):
            raise RuntimeError(data.get("__failMessage", f"failing attempt {job.attempts_made + 1}"))
        if "__return" in data:
            return data["__return"]
        return {"ok": True, "id": job.id, "by": who}

    return processor


def stream(raw: Any, prefix: str, queue: str = "q") -> list[dict[str, str]]:
    return [fields for _, fields in raw.xrange(f"{prefix}:{queue}:events")]




def test_mixed_fleet_processes_every_job_exactly_once(node6: Any, raw: Any, prefix: str, redis_url: str) -> None:
    plain = [{"name": "plain", "data": {"__sleepMs": 3, "k": i}} for i in range(300)]
    flaky = [
        {"name": "flaky", "data": {"__sleepMs": 3, "__failTimes": 1, "k": i},
         "opts": {"attempts": 3, "backoff": {"type": "fixed", "delay": 250}}}
        for i in range(20)
    ]
    expo = [
        {"name": "expo", "data": {"__failTimes": 2, "k": i},
         "opts": {"attempts": 3, "backoff": {"type": "exponential", "delay": 100}}}
        for i in range(5)
    ]
    total = len(plain) + len(flaky) + len(expo)
    py_seen: list[str] = []
    worker = Worker("q", data_driven("py", py_seen), connection=redis_url, prefix=prefix,
                    concurrency=4, drain_delay=1)
    node_outcomes: list[dict[str, Any]] = []

    def node_worker() -> None:
        node_outcomes.extend(node6.call("process", queue="q", prefix=prefix, count=10 * total,
                                        concurrency=4, timeoutMs=9000, timeout=40))

    node_thread = threading.Thread(target=node_worker)
    with worker:
        node_thread.start()
        time.sleep(0.3)
        # Node producers add while both fleets run
        for batch in (plain[:150], flaky, plain[150:], expo):
            node6.call("addBulk", queue="q", prefix=prefix, jobs=batch)
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == total, timeout=30)
        node_thread.join(40)
    completed = raw.zrange(f"{prefix}:q:completed", 0, -1)
    assert len(completed) == total == len(set(completed))
    assert raw.zcard(f"{prefix}:q:failed") == 0
    assert raw.llen(f"{prefix}:q:wait") == raw.llen(f"{prefix}:q:active") == 0
    assert raw.zcard(f"{prefix}:q:delayed") == raw.zcard(f"{prefix}:q:prioritized") == 0
    evs = stream(raw, prefix)
    completions = collections.Counter(e["jobId"] for e in evs if e["event"] == "completed")
    assert len(completions) == total and set(completions.values()) == {1}
    by_py = {e["jobId"] for e in evs if e["event"] == "completed" and json.loads(e["returnvalue"]).get("by") == "py"}
    node_completed = {o["jobId"] for o in node_outcomes if o["event"] == "completed"}
    assert by_py and node_completed, "both fleets must have taken part"
    assert by_py.isdisjoint(node_completed) and by_py | node_completed == set(completions)
    # retries and backoff as configured, whoever ran which attempt
    for job_id in completions:
        fields = raw.hgetall(f"{prefix}:q:{job_id}")
        name = fields["name"]
        assert int(fields["atm"]) == {"plain": 1, "flaky": 2, "expo": 3}[name]
        assert int(fields["ats"]) == int(fields["atm"])
    delayed = collections.defaultdict(list)
    for e in evs:
        if e["event"] == "delayed":
            delayed[e["jobId"]].append(int(e["delay"]))
    fails = collections.defaultdict(list)
    for entry_id, e in raw.xrange(f"{prefix}:q:events"):
        if e["event"] == "delayed":
            fails[e["jobId"]].append(int(entry_id.split("-")[0]))
    for job_id in completions:
        name = raw.hget(f"{prefix}:q:{job_id}", "name")
        if name == "flaky":
            assert len(delayed[job_id]) == 1
            # due = the caller's clock + delay; the entry id is Redis' clock a little later
            assert delayed[job_id][0] - fails[job_id][0] in range(200, 261)
        elif name == "expo":
            gaps = [due - at for due, at in zip(delayed[job_id], fails[job_id], strict=True)]
            assert len(gaps) == 2
            # 2^atm * 100 with atm before the attempt (100 then 200, not 200 then 400): the
            # bounds leave room for the call's queueing, which only shortens the gap
            assert 50 <= gaps[0] <= 110 and 150 <= gaps[1] <= 210, gaps


def test_failed_by_python_retried_then_completed_by_node(node6: Any, raw: Any, prefix: str, redis_url: str) -> None:
    job_id = node6.call("add", queue="q", prefix=prefix, name="once",
                        data={"__failTimes": 1, "__failMessage": "py says no"}, opts={"attempts": 1})["id"]
    with Worker("q", data_driven("py"), connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    assert raw.hget(f"{prefix}:q:{job_id}", "failedReason") == "py says no"
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        job = queue.get_job(job_id)
        assert job is not None
        job.retry()
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert outcomes[0]["event"] == "completed" and outcomes[0]["jobId"] == job_id
    assert outcomes[0]["attemptsMade"] == 2
    fields = raw.hgetall(f"{prefix}:q:{job_id}")
    assert fields["atm"] == "2" and fields["ats"] == "2"
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [job_id]


def test_failed_by_node_retried_then_completed_by_python(node6: Any, raw: Any, prefix: str, redis_url: str) -> None:
    job_id = node6.call("add", queue="q", prefix=prefix, name="once",
                        data={"__failTimes": 1, "__failMessage": "node says no"}, opts={"attempts": 1})["id"]
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert outcomes[0]["event"] == "failed"
    node6.call("retryJob", queue="q", prefix=prefix, jobId=job_id)
    done: list[Any] = []
    with Worker("q", data_driven("py"), connection=redis_url, prefix=prefix, drain_delay=1,
                on_completed=lambda j, r: done.append(r)):
        wait_for(lambda: bool(done))
    assert done == [{"ok": True, "id": job_id, "by": "py"}]
    fields = raw.hgetall(f"{prefix}:q:{job_id}")
    assert fields["atm"] == "2" and fields["ats"] == "2"
    got = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert got["state"] == "completed" and got["json"]["attemptsMade"] == 2
    assert got["json"]["returnvalue"] == done[0]


def test_attempts_continue_across_node_and_python(node6: Any, raw: Any, prefix: str, redis_url: str) -> None:
    job_id = node6.call("add", queue="q", prefix=prefix, name="hop", data={"__failTimes": 2},
                        opts={"attempts": 3, "backoff": {"type": "fixed", "delay": 100}})["id"]
    first = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert first[0]["event"] == "failed" and first[0]["attemptsMade"] == 1
    with Worker("q", data_driven("py"), connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job_id}")
    assert (fields["atm"], fields["ats"]) == ("3", "3")
    assert fields["failedReason"] == "failing attempt 2"


def test_node_events_see_our_transitions(node6: Any, raw: Any, prefix: str, redis_url: str) -> None:
    node6.call("eventsStart", queue="q", prefix=prefix)
    try:
        job_id = node6.call("add", queue="q", prefix=prefix, name="e", data={"__return": [1, 2]})["id"]
        with Worker("q", data_driven("py"), connection=redis_url, prefix=prefix, drain_delay=1):
            got = node6.call("eventsCollect", queue="q", prefix=prefix,
                             waitFor={"event": "completed", "jobId": job_id}, timeoutMs=10000)
    finally:
        node6.call("eventsStop", queue="q", prefix=prefix)
    completed = [e for e in got if e["event"] == "completed"]
    assert completed and completed[0]["args"][0]["returnvalue"] == [1, 2]
    assert any(e["event"] == "active" for e in got)
