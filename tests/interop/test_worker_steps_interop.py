"""Worker steps beside Node BullMQ 6.7: manual delay, waiting-children, rate limit, metrics."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import DelayedError, Job, Queue, WaitingChildrenError, Worker

pytestmark = pytest.mark.interop




def stream(raw: Any, prefix: str, queue: str = "q") -> list[dict[str, str]]:
    return [fields for _, fields in raw.xrange(f"{prefix}:{queue}:events")]


def test_job_delayed_by_our_processor_is_completed_by_node(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    job_id = node6.call("add", queue="q", prefix=prefix, name="step", data={"__return": "fin"},
                        opts={"attempts": 2})["id"]

    def processor(job: Job, token: str) -> None:
        job.move_to_delayed(int(time.time() * 1000) + 300, token)
        raise DelayedError()

    with Worker("q", processor, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zscore(f"{prefix}:q:delayed", job_id) is not None)
    fields = raw.hgetall(f"{prefix}:q:{job_id}")
    assert "atm" not in fields and fields["ats"] == "1" and 0 < int(fields["delay"]) <= 300
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert [(o["event"], o["jobId"], o["attemptsMade"]) for o in outcomes] == [
        ("completed", job_id, 1)
    ]
    fields = raw.hgetall(f"{prefix}:q:{job_id}")
    assert fields["atm"] == "1" and fields["ats"] == "2" and fields["returnvalue"] == '"fin"'
    names = [e["event"] for e in stream(raw, prefix) if e.get("jobId") == job_id]
    assert names == ["added", "waiting", "active", "delayed", "waiting", "active", "completed"]


def test_node_flow_parent_waits_for_more_children_with_our_worker(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    flow = node6.call("addFlow", prefix=prefix, flow={
        "name": "parent", "queueName": "top", "data": {"step": "spawn"},
        "children": [{"name": "kid", "queueName": "kids", "data": {"__return": "first"}}]})
    parent_id = flow["ids"]["id"]
    assert node6.call("process", queue="kids", prefix=prefix, count=1, timeoutMs=10000)
    kids = Queue("kids", connection=redis_url, prefix=prefix)
    moved: list[bool] = []

    def processor(job: Job, token: str) -> Any:
        if job.data["step"] == "spawn":
            kids.add("kid", {"__return": "second"},
                     {"parent": {"id": job.id, "queue": f"{prefix}:top"}})
            job.update_data({"step": "join"})
            moved.append(job.move_to_waiting_children(token))
            raise WaitingChildrenError()
        return sorted(job.get_children_values().values())

    with Worker("top", processor, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zscore(f"{prefix}:top:waiting-children", parent_id) is not None)
        assert node6.call("getJob", queue="top", prefix=prefix, jobId=parent_id)["state"] == (
            "waiting-children")
        assert node6.call("process", queue="kids", prefix=prefix, count=1, timeoutMs=10000)
        wait_for(lambda: raw.zscore(f"{prefix}:top:completed", parent_id) is not None)
    kids.close()
    assert moved == [True]
    got = node6.call("getJob", queue="top", prefix=prefix, jobId=parent_id)
    assert got["state"] == "completed"
    assert got["json"]["attemptsMade"] == 1
    assert raw.hget(f"{prefix}:top:{parent_id}", "returnvalue") == '["first", "second"]'
    events = [e for e in stream(raw, prefix, "top") if e.get("jobId") == parent_id]
    assert {"event": "waiting-children", "jobId": parent_id, "prev": "active"} in events


def test_node_reads_our_rate_limit_and_writes_the_same(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    with Worker("q", lambda j: None, connection=redis_url, prefix=prefix) as worker:
        worker.rate_limit(5000)
    ours = Queue("q", connection=redis_url, prefix=prefix)
    node_ttl = node6.call("getRateLimitTtl", queue="q", prefix=prefix)
    assert 4000 < node_ttl <= 5000 and 4000 < ours.get_rate_limit_ttl() <= 5000
    assert node6.call("getRateLimitTtl", queue="q", prefix=f"{prefix}x") == -2
    theirs_max = node6.call("getRateLimitTtl", queue="q", prefix=prefix, maxJobs=3)
    assert 4000 < theirs_max <= 5000 and abs(ours.get_rate_limit_ttl(3) - theirs_max) < 500
    raw.set(f"{prefix}:m:limiter", 2, px=5000)
    assert node6.call("getRateLimitTtl", queue="m", prefix=prefix, maxJobs=3) == 0
    assert Queue("m", connection=redis_url, prefix=prefix).get_rate_limit_ttl(3) == 0
    node6.call("rateLimit", queue="n", prefix=prefix, expireTimeMs=5000)
    assert raw.get(f"{prefix}:n:limiter") == raw.get(f"{prefix}:q:limiter") == "9007199254740991"
    ours.close()


def test_rate_limited_job_put_back_by_us_is_completed_by_node(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    job_id = node6.call("add", queue="q", prefix=prefix, name="api", data={"__return": 1})["id"]
    calls: list[int] = []

    def processor(job: Job) -> None:
        calls.append(1)
        worker.rate_limit(300)
        raise Worker.RateLimitError()

    worker = Worker("q", processor, connection=redis_url, prefix=prefix, drain_delay=1, autorun=False)
    with worker:
        wait_for(lambda: calls != [] and raw.lrange(f"{prefix}:q:wait", 0, -1) == [job_id])
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert [(o["event"], o["jobId"], o["attemptsMade"]) for o in outcomes] == [
        ("completed", job_id, 1)
    ]
    assert raw.hget(f"{prefix}:q:{job_id}", "ats") == "2"


def seed_metrics(raw: Any, prefix: str, queue: str) -> None:
    three_minutes_ago = int(time.time() * 1000) - 180_000
    raw.hset(f"{prefix}:{queue}:metrics:completed",
             mapping={"count": 2, "prevTS": three_minutes_ago, "prevCount": 0})


def test_metrics_match_a_node_worker_and_node_reads_ours(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    for queue in ("n", "u"):
        seed_metrics(raw, prefix, queue)
        for i in range(2):
            node6.call("add", queue=queue, prefix=prefix, name="m", data={"i": i})
    node6.call("process", queue="n", prefix=prefix, count=2, timeoutMs=10000,
               workerOpts={"metrics": {"maxDataPoints": 5}})
    with Worker("u", lambda j: None, connection=redis_url, prefix=prefix,
                metrics={"maxDataPoints": 5}):
        wait_for(lambda: raw.zcard(f"{prefix}:u:completed") == 2)

    def state(queue: str) -> tuple[dict[str, str], list[str]]:
        meta = raw.hgetall(f"{prefix}:{queue}:metrics:completed")
        meta.pop("prevTS")
        return meta, raw.lrange(f"{prefix}:{queue}:metrics:completed:data", 0, -1)

    assert state("u") == state("n") == ({"count": "4", "prevCount": "2"}, ["0", "0", "2"])
    theirs = node6.call("getMetrics", queue="u", prefix=prefix, type="completed")
    ours = Queue("u", connection=redis_url, prefix=prefix)
    assert ours.get_metrics("completed") == theirs
    assert ours.get_metrics("completed", 0, 1) == node6.call(
        "getMetrics", queue="u", prefix=prefix, type="completed", start=0, end=1)
    assert ours.get_metrics("failed") == node6.call(
        "getMetrics", queue="u", prefix=prefix, type="failed")
    ours.close()
