"""Job.retry() against real Node BullMQ (6.7.0 and 5.81.5) and the official async port.

The strongest check: the same scenario is played twice by Node BullMQ on two queues, then Node
retries the job in one and bullmq-sync in the other, and the two queues' Redis contents must be
identical (timestamps and stream ids aside).
"""

from __future__ import annotations

import json
import re
from typing import Any

import asyncport
import pytest
import redis
from nodebullmq import NodeBullMQ

from bullmq_sync import Connection, Job, JobNotInState, Queue

pytestmark = pytest.mark.interop

_TIME_FIELDS = {"timestamp", "processedOn", "finishedOn"}


def normalized_queue(raw: redis.Redis, prefix: str, queue: str) -> dict[str, Any]:
    """Every key of one queue, its content with times masked (our op keys left out)."""
    base = f"{prefix}:{queue}:"
    state: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(match=base + "*", count=1000)):
        name = key[len(base):]
        if name.startswith("bqs:op:"):
            continue
        kind = raw.type(key)
        if kind == "hash":
            # meta "version" is written by whichever Node Queue object was constructed last
            value: Any = {
                f: ("<t>" if f in _TIME_FIELDS else v)
                for f, v in raw.hgetall(key).items()
                if not (name == "meta" and f == "version")
            }
        elif kind == "list":
            value = raw.lrange(key, 0, -1)
        elif kind == "zset":
            value = [(m, "<t>" if s > 1e12 else s) for m, s in raw.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            value = sorted(raw.smembers(key))
        elif kind == "stream":
            value = [
                {f: re.sub(r"^\d{13}$", "<t>", v) for f, v in fields.items()}
                for _, fields in raw.xrange(key)
            ]
        elif kind == "string":
            value = "<string>" if name in ("stalled-check",) else raw.get(key)
        else:
            value = kind
        state[name] = (kind, value)
    return state


def fail_job(node: NodeBullMQ, prefix: str, queue: str, opts: dict, *, complete: bool = False, attempts: int = 1) -> str:
    data = {"__return": {"done": True}} if complete else {"__failTimes": 99, "__failMessage": "boom"}
    job_id = node.call("add", queue=queue, prefix=prefix, name="work", data=data, opts=opts)["id"]
    node.call("process", queue=queue, prefix=prefix, count=attempts, timeoutMs=10000)
    return job_id


SCENARIOS = {
    "plain": ({}, {}),
    "lifo": ({"lifo": True}, {}),
    "prioritized": ({"priority": 5}, {}),
    "attempts-exhausted": ({"attempts": 2}, {"resetAttemptsMade": True}),
    "reset-started": ({}, {"resetAttemptsStarted": True}),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_redis_state_as_node_retry(node6, redis_url, raw, prefix, scenario):
    opts, retry_opts = SCENARIOS[scenario]
    attempts = opts.get("attempts", 1)
    for q in ("by-node", "by-us"):
        fail_job(node6, prefix, q, opts, attempts=attempts)
        raw.lpush(f"{prefix}:{q}:wait", "other")  # something already waiting
        assert node6.call("getJob", queue=q, prefix=prefix, jobId="1")["state"] == "failed"

    node6.call("retryJob", queue="by-node", prefix=prefix, jobId="1", state="failed", opts=retry_opts)
    with Queue("by-us", connection=redis_url, prefix=prefix) as queue:
        job = Job.fromId(queue, "1")
        job.retry("failed", retry_opts)

    assert normalized_queue(raw, prefix, "by-us") == normalized_queue(raw, prefix, "by-node")
    node_view = node6.call("getJob", queue="by-us", prefix=prefix, jobId="1")
    assert node_view["state"] == ("prioritized" if "priority" in opts else "waiting")
    assert "failedReason" not in node_view["json"] and "finishedOn" not in node_view["json"]


def test_same_redis_state_for_a_completed_job(node6, redis_url, raw, prefix):
    for q in ("by-node", "by-us"):
        fail_job(node6, prefix, q, {}, complete=True)
    node6.call("retryJob", queue="by-node", prefix=prefix, jobId="1", state="completed")
    with Queue("by-us", connection=redis_url, prefix=prefix) as queue:
        queue.get_job("1").retry("completed")
    assert normalized_queue(raw, prefix, "by-us") == normalized_queue(raw, prefix, "by-node")


def test_paused_queue_same_as_node(node6, redis_url, raw, prefix):
    for q in ("by-node", "by-us"):
        fail_job(node6, prefix, q, {})
        node6.call("pause", queue=q, prefix=prefix)
    node6.call("retryJob", queue="by-node", prefix=prefix, jobId="1")
    with Queue("by-us", connection=redis_url, prefix=prefix) as queue:
        queue.get_job("1").retry()
    assert normalized_queue(raw, prefix, "by-us") == normalized_queue(raw, prefix, "by-node")
    assert not raw.exists(f"{prefix}:by-us:marker")


def test_flow_child_retry_same_as_node(node6, redis_url, raw, prefix):
    for side in ("n", "u"):
        flow = {
            "name": "parent", "queueName": f"parent-{side}", "data": {},
            "children": [
                {"name": "child", "queueName": f"child-{side}", "data": {"__fail": "child broke"},
                 "opts": {"jobId": "c1", "failParentOnFailure": True}},
                {"name": "child", "queueName": f"child-{side}", "data": {"__sleepMs": 1},
                 "opts": {"jobId": "c2"}},
            ],
            "opts": {"jobId": "p1"},
        }
        node6.call("addFlow", prefix=prefix, flow=flow)
        node6.call("process", queue=f"child-{side}", prefix=prefix, count=2, timeoutMs=10000)
        assert raw.zscore(f"{prefix}:parent-{side}:p1:unsuccessful", f"{prefix}:child-{side}:c1") is not None

    node6.call("retryJob", queue="child-n", prefix=prefix, jobId="c1")
    with Queue("child-u", connection=redis_url, prefix=prefix) as queue:
        queue.get_job("c1").retry()

    def parent_side(side: str) -> dict:
        key = f"{prefix}:parent-{side}:p1"
        child = f"{prefix}:child-{side}:"
        return {
            "dependencies": sorted(m.replace(child, "") for m in raw.smembers(key + ":dependencies")),
            "unsuccessful": raw.zcard(key + ":unsuccessful"),
            "processed": sorted(k.replace(child, "") for k in raw.hkeys(key + ":processed")),
            "defa": raw.hget(key, "defa") is not None,
        }

    assert parent_side("u") == parent_side("n")
    assert parent_side("u")["dependencies"] == ["c1"]
    ours = json.dumps(normalized_queue(raw, prefix, "child-u"), sort_keys=True)
    theirs = json.dumps(normalized_queue(raw, prefix, "child-n"), sort_keys=True)
    assert ours.replace("parent-u", "parent-n") == theirs


def test_node_worker_completes_a_job_we_retried(node6, redis_url, prefix):
    job_id = node6.call(
        "add", queue="q", prefix=prefix, name="work",
        data={"__failTimes": 1, "__failMessage": "first attempt fails"}, opts={"attempts": 1},
    )["id"]
    [outcome] = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert outcome["event"] == "failed"
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        job = queue.get_job(job_id)
        assert job.failed_reason == "first attempt fails" and job.attempts_made == 1
        job.retry()
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert [o["event"] for o in outcomes] == ["completed"]
    view = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert view["state"] == "completed" and view["json"]["attemptsMade"] == 2


def test_node_sees_our_refusal_codes_as_its_own(node6, redis_url, prefix):
    job_id = node6.call("add", queue="q", prefix=prefix, name="work", data={}, opts={})["id"]
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        with pytest.raises(JobNotInState) as ours:
            queue.get_job(job_id).retry()
    with pytest.raises(Exception) as theirs:
        node6.call("retryJob", queue="q", prefix=prefix, jobId=job_id)
    assert theirs.value.code == ours.value.code == -3
    # Node's text for the code; ours adds where the job is.
    node_text = JobNotInState.template.format(job_id=job_id, state="failed", command="reprocessJob")
    assert node_text in str(theirs.value)
    assert str(ours.value) == f"Job {job_id} is waiting, not failed. reprocessJob"


def test_job_failed_by_bullmq_5_is_retried_and_completed_by_6(node5, node6, redis_url, raw, prefix):
    job_id = node5.call(
        "add", queue="q", prefix=prefix, name="legacy",
        data={"__failTimes": 1, "__failMessage": "v5 failure"}, opts={"lifo": True},
    )["id"]
    node5.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    raw.lpush(f"{prefix}:q:wait", "someone-else")
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        job = queue.get_job(job_id)
        assert job.failed_reason == "v5 failure" and job.lifo
        job.retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["someone-else", job_id]
    raw.lrem(f"{prefix}:q:wait", 0, "someone-else")
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert [o["event"] for o in outcomes] == ["completed"]


def test_async_port_jobs_retried_by_us_and_processed_by_the_port(redis_url, prefix):
    job_id = asyncport.add(redis_url, "q", "port-job", {"__failTimes": 1, "__failMessage": "port boom"}, {}, prefix=prefix)
    [first] = asyncport.process(redis_url, "q", 1, 10, prefix=prefix)
    assert first["event"] == "failed"
    with Queue("q", connection=Connection(redis_url), prefix=prefix) as queue:
        job = queue.get_job(job_id)
        assert job.failed_reason == "port boom"
        job.retry()
    assert asyncport.get_job(redis_url, "q", job_id, prefix=prefix)["state"] == "waiting"
    [second] = asyncport.process(redis_url, "q", 1, 10, prefix=prefix)
    assert second["event"] == "completed"
    assert asyncport.get_job(redis_url, "q", job_id, prefix=prefix)["state"] == "completed"


def test_async_port_retry_and_ours_leave_the_same_state(redis_url, raw, prefix):
    for q in ("by-port", "by-us"):
        asyncport.add(redis_url, q, "w", {"__fail": "x"}, {"priority": 3}, prefix=prefix)
        asyncport.process(redis_url, q, 1, 10, prefix=prefix)
    asyncport.retry(redis_url, "by-port", "1", prefix=prefix)
    with Queue("by-us", connection=redis_url, prefix=prefix) as queue:
        queue.get_job("1").retry()
    assert normalized_queue(raw, prefix, "by-us") == normalized_queue(raw, prefix, "by-port")
