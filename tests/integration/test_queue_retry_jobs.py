"""Queue.retry_jobs / promote_jobs: BullMQ 6.7 moveJobsToWait, in bounded exactly-once batches."""

from __future__ import annotations

import json

import pytest
from helpers import events
from queue_helpers import snapshot

from bullmq_sync import InvalidArgument


def _finish(raw, prefix, job_id, state, finished_on):
    raw.lrem(f"{prefix}:q:wait", 0, job_id)
    raw.zrem(f"{prefix}:q:prioritized", job_id)
    raw.zadd(f"{prefix}:q:{state}", {job_id: finished_on})
    field = "failedReason" if state == "failed" else "returnvalue"
    raw.hset(f"{prefix}:q:{job_id}", mapping={"finishedOn": finished_on, field: "x",
                                             "processedOn": finished_on - 1, "atm": 1})


def test_retry_failed_moves_oldest_first_with_events(queue, raw, prefix):
    for i in range(5):
        job = queue.add(f"j{i}", priority=3 if i == 2 else 0)
        _finish(raw, prefix, job.id, "failed", 1000 + (5 - i))
    raw.delete(f"{prefix}:q:events", f"{prefix}:q:marker")
    seen = []
    moved = queue.retry_jobs(count=2, timestamp=1004, progress=seen.append)
    # finishedOn 1001..1004 qualify (jobs 5,4,3,2); oldest = 5 runs first (tail).
    assert moved == 4 and seen == [2, 4]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["2", "3", "4", "5"]
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == ["1"]
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0
    assert set(raw.hgetall(f"{prefix}:q:5")) == {"name", "data", "opts", "timestamp", "delay",
                                                 "priority", "atm"}
    assert events(raw, prefix) == [{"event": "waiting", "jobId": j, "prev": "failed"}
                                   for j in ("5", "4", "3", "2")]
    assert raw.zrange(f"{prefix}:q:prioritized", 0, -1) == []


def test_retry_completed_clears_returnvalue(queue, raw, prefix):
    job = queue.add("a")
    _finish(raw, prefix, job.id, "completed", 10)
    assert queue.retry_jobs("completed") == 1
    assert raw.hget(job.key, "returnvalue") is None
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]


def test_retried_children_go_back_into_parent_dependencies(queue, raw, prefix):
    parent = queue.add("parent")
    c1 = queue.add("c1", parent=parent, fail_parent_on_failure=True)
    c2 = queue.add("c2", parent=parent, ignore_dependency_on_failure=True)
    for child in (c1, c2):
        _finish(raw, prefix, child.id, "failed", 50)
        raw.srem(f"{prefix}:q:1:dependencies", child.key)
    raw.zadd(f"{prefix}:q:1:unsuccessful", {c1.key: 50})
    raw.hset(f"{prefix}:q:1:failed", c2.key, "x")
    assert queue.retry_jobs() == 2
    assert raw.smembers(f"{prefix}:q:1:dependencies") == {c1.key, c2.key}
    assert not raw.exists(f"{prefix}:q:1:unsuccessful", f"{prefix}:q:1:failed")


def test_paused_queue_gets_no_marker(queue, raw, prefix):
    job = queue.add("a")
    _finish(raw, prefix, job.id, "failed", 10)
    raw.hset(f"{prefix}:q:meta", "paused", 1)
    raw.delete(f"{prefix}:q:marker")
    assert queue.retry_jobs() == 1
    assert not raw.exists(f"{prefix}:q:marker")


def test_replayed_batch_is_not_applied_twice(queue, raw, prefix, monkeypatch):
    job = queue.add("a")
    _finish(raw, prefix, job.id, "failed", 10)
    tokens = iter(["tok1", "tok2"])
    monkeypatch.setattr(queue, "next_token", lambda: next(tokens))
    assert queue.retry_jobs(count=1) == 1  # batch 1 moves it; the loop asks again (moved == count)
    raw.zadd(f"{prefix}:q:failed", {"1": 11})  # someone fails it again meanwhile
    # A repeat of the first call (same token) reports the original outcome, changes nothing.
    reply = queue.connection.run_script(
        "moveJobsBackToWait",
        (f"{prefix}:q:failed", f"{prefix}:q:wait", f"{prefix}:q:meta", f"{prefix}:q:active",
         f"{prefix}:q:marker", f"{prefix}:q:events", queue.keys.op("tok1")),
        (queue.keys.base, 1, "+inf", "failed", 60000),
    )
    assert reply == [1, 1]
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == ["1"]


def test_promote_jobs_moves_all_delayed_keeping_delay_field(queue, raw, prefix):
    for i in range(3):
        queue.add(f"d{i}", delay=60_000 + i)
    assert queue.promote_jobs(count=2) == 3
    assert raw.zcard(f"{prefix}:q:delayed") == 0
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["3", "2", "1"]
    assert raw.hget(f"{prefix}:q:1", "delay") == "60000"
    assert events(raw, prefix)[-1] == {"event": "waiting", "jobId": "3", "prev": "delayed"}


@pytest.mark.parametrize("kwargs", [{"state": "active"}, {"count": 0}, {"timestamp": -5},
                                    {"state": "waiting"}, {"count": 1.5}])
def test_bad_arguments_change_nothing(queue, raw, prefix, kwargs):
    job = queue.add("a")
    _finish(raw, prefix, job.id, "failed", 10)
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        queue.retry_jobs(**kwargs)
    assert snapshot(raw, prefix) == before


def test_many_jobs_in_batches(queue, raw, prefix):
    queue.add_bulk([{"name": "n"} for _ in range(2500)])
    pipe = raw.pipeline()
    ids = raw.lrange(f"{prefix}:q:wait", 0, -1)
    pipe.delete(f"{prefix}:q:wait")
    pipe.zadd(f"{prefix}:q:failed", {i: int(i) for i in ids})
    pipe.execute()
    assert queue.retry_jobs(count=1000) == 2500
    assert raw.llen(f"{prefix}:q:wait") == 2500
    assert raw.lindex(f"{prefix}:q:wait", -1) == "1"
    assert json.loads(raw.hget(f"{prefix}:q:1", "opts")) == {"attempts": 0}
