"""Manual processing beside Node BullMQ 6.7: jobs taken by hand on one side, seen and
finished on the other (same lock key, same token, same transitions)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import events

from bullmq_sync import JobLockMismatch, Queue, Worker

pytestmark = pytest.mark.interop


def manual_worker(redis_url: str, prefix: str, **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 0.5)
    return Worker("q", None, connection=redis_url, prefix=prefix, **kw)


def test_node_sees_our_manual_job_active_with_our_token(node6, raw, prefix, redis_url):
    job_id = node6.call("add", queue="q", prefix=prefix, name="by-hand", data={"n": 1})["id"]
    worker = manual_worker(redis_url, prefix, lock_duration=30000)
    job = worker.get_next_job("python-token")
    assert job is not None and job.id == job_id and job.data == {"n": 1}
    seen = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert seen["state"] == "active" and seen["json"]["attemptsStarted"] == 1
    assert raw.get(f"{prefix}:q:{job_id}:lock") == "python-token"
    # Node's own lock checks accept our token and refuse another one.
    assert node6.call("manualExtendLock", queue="q", prefix=prefix, jobId=job_id,
                      token="python-token", duration=60000) == 1
    assert 59000 < raw.pttl(f"{prefix}:q:{job_id}:lock") <= 60000
    assert node6.call("manualExtendLock", queue="q", prefix=prefix, jobId=job_id,
                      token="someone-else", duration=60000) == 0
    with pytest.raises(Exception, match="Lock mismatch") as refused:
        node6.call("manualMoveToCompleted", queue="q", prefix=prefix, jobId=job_id,
                   token="someone-else", returnValue="x")
    assert refused.value.code == -6  # type: ignore[attr-defined]
    assert node6.call("manualMoveToCompleted", queue="q", prefix=prefix, jobId=job_id,
                      token="python-token", returnValue={"done": True}) is None
    finished = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert finished["state"] == "completed" and finished["json"]["returnvalue"] == {"done": True}
    worker.close()


def test_node_jobs_processed_by_hand_here(node6, raw, prefix, redis_url):
    ok = node6.call("add", queue="q", prefix=prefix, name="ok", data={})["id"]
    retried = node6.call("add", queue="q", prefix=prefix, name="retry", data={},
                         opts={"attempts": 2, "backoff": {"type": "fixed", "delay": 200}})["id"]
    doomed = node6.call("add", queue="q", prefix=prefix, name="doomed", data={})["id"]
    worker = manual_worker(redis_url, prefix, drain_delay=5)
    token = "py"
    job = worker.get_next_job(token)
    assert job.id == ok
    job = job.move_to_completed([1, 2], token, fetch_next=True)
    assert job.id == retried
    job = job.move_to_failed(Exception("once"), token, fetch_next=True)  # backoff, next job
    assert job.id == doomed
    assert job.move_to_failed(Exception("never"), token) is None
    job = worker.get_next_job(token)  # the retry, once its backoff is over
    assert job is not None and job.id == retried and job.attempts_made == 1
    job.move_to_completed("second time", token)
    worker.close()

    first = node6.call("getJob", queue="q", prefix=prefix, jobId=ok)
    assert first["state"] == "completed" and first["json"]["returnvalue"] == [1, 2]
    second = node6.call("getJob", queue="q", prefix=prefix, jobId=retried)
    assert second["state"] == "completed" and second["json"]["attemptsMade"] == 2
    assert second["json"]["failedReason"] == "once"
    third = node6.call("getJob", queue="q", prefix=prefix, jobId=doomed)
    assert third["state"] == "failed" and third["json"]["failedReason"] == "never"
    assert third["json"]["attemptsMade"] == 1 and third["json"]["stacktrace"][0].startswith(
        "Exception: never")


def test_our_jobs_processed_by_hand_in_node(node6, raw, prefix, redis_url):
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        ok = queue.add("ok", {"v": 1}).id
        retried = queue.add("retry", {}, {"attempts": 2}).id
    token = "node-token"
    taken = node6.call("manualGetNextJob", queue="q", prefix=prefix, token=token)
    assert taken["id"] == ok and taken["json"]["data"] == {"v": 1}
    assert raw.get(f"{prefix}:q:{ok}:lock") == token
    # Our side refuses the wrong token and accepts Node's.
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        job = queue.get_job(ok)
        with pytest.raises(JobLockMismatch):
            job.move_to_completed("x", "not-node")
        job.extend_lock(token, 45000)
    assert 44000 < raw.pttl(f"{prefix}:q:{ok}:lock") <= 45000
    nxt = node6.call("manualMoveToCompleted", queue="q", prefix=prefix, jobId=ok, token=token,
                     returnValue="from node", fetchNext=True)
    assert nxt == retried
    assert raw.get(f"{prefix}:q:{retried}:lock") == token
    assert node6.call("manualMoveToFailed", queue="q", prefix=prefix, jobId=retried,
                      token=token, message="try again") is None
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        done = queue.get_job(ok)
        assert done.return_value == "from node" and done.attempts_made == 1
        again = queue.get_job(retried)
        assert queue.get_job_state(retried) == "waiting"  # Node's retryJob: straight back
        assert again.attempts_made == 1 and again.failed_reason == "try again"
    names = [e["event"] for e in events(raw, prefix) if e.get("jobId") == retried]
    assert names == ["added", "waiting", "active", "waiting"]


def test_node_and_python_by_hand_on_one_queue_take_each_job_once(node6, raw, prefix, redis_url):
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        ids = [queue.add("n", {"i": i}).id for i in range(20)]
    worker = manual_worker(redis_url, prefix)
    taken: list[tuple[str, str]] = []
    for turn in range(10):
        ours = worker.get_next_job(f"py-{turn}", block=False)
        assert ours is not None
        taken.append(("py", ours.id))
        theirs = node6.call("manualGetNextJob", queue="q", prefix=prefix, token=f"node-{turn}")
        taken.append(("node", theirs["id"]))
        ours.move_to_completed("py", f"py-{turn}")
        node6.call("manualMoveToCompleted", queue="q", prefix=prefix, jobId=theirs["id"],
                   token=f"node-{turn}", returnValue="node")
    worker.close()
    assert sorted(job_id for _, job_id in taken) == sorted(ids)
    for side, job_id in taken:
        assert json.loads(raw.hget(f"{prefix}:q:{job_id}", "returnvalue")) == side
    assert raw.zcard(f"{prefix}:q:completed") == 20 and raw.llen(f"{prefix}:q:active") == 0


def test_async_port_and_us_finish_each_others_manual_jobs(raw, prefix, redis_url):
    """The official async port's getNextJob / moveToCompleted with our jobs and tokens."""
    import asyncio

    import bullmq

    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        first, second = queue.add("a", {"v": 1}).id, queue.add("b", {}).id

    async def port(step):
        worker = bullmq.Worker("q", None, {"connection": redis_url, "prefix": prefix,
                                           "autorun": False})
        try:
            return await step(worker)
        finally:
            await worker.close()

    async def take(worker):
        job = await worker.getNextJob("port-token")
        return job.id

    assert asyncio.run(port(take)) == first
    assert raw.get(f"{prefix}:q:{first}:lock") == "port-token"
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.get_job(first).move_to_completed("by us", "port-token")

    worker = manual_worker(redis_url, prefix)
    ours = worker.get_next_job("our-token")
    assert ours.id == second

    async def finish(worker):
        job = await bullmq.Job.fromId(worker, second)
        await job.moveToCompleted("by the port", "our-token", False)

    asyncio.run(port(finish))
    worker.close()
    assert raw.hget(f"{prefix}:q:{first}", "returnvalue") == '"by us"'
    assert raw.hget(f"{prefix}:q:{second}", "returnvalue") == '"by the port"'
    assert raw.zcard(f"{prefix}:q:completed") == 2 and raw.llen(f"{prefix}:q:active") == 0
