"""promote, change_delay/priority, update_data/progress, log, remove, pause/resume, drain,
clean, obliterate: exact Redis state and events after each."""

from __future__ import annotations

import time

import pytest
from helpers import events
from queue_helpers import snapshot

from bullmq_sync import InvalidArgument, JobNotFound, JobNotInState, Queue, QueueHasActiveJobs


def test_promote(queue, raw, prefix):
    job = queue.add("d", delay=60_000)
    job.promote()
    assert raw.zcard(f"{prefix}:q:delayed") == 0
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert raw.hget(job.key, "delay") == "0"
    assert events(raw, prefix)[-1] == {"event": "waiting", "jobId": "1", "prev": "delayed"}
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0
    before = snapshot(raw, prefix)
    with pytest.raises(JobNotInState):
        job.promote()
    assert snapshot(raw, prefix) == before
    p = queue.add("p", delay=5000, priority=4)
    p.promote()
    assert raw.zscore(f"{prefix}:q:prioritized", p.id) == 4 * 2**32 + 1


def test_change_delay(queue, raw, prefix):
    job = queue.add("d", delay=60_000)
    t0 = int(time.time() * 1000)
    job.change_delay(5000)
    score = raw.zscore(f"{prefix}:q:delayed", job.id)
    due = int(score) // 4096
    assert t0 + 5000 <= due <= int(time.time() * 1000) + 5000
    assert raw.hget(job.key, "delay") == "5000"
    assert events(raw, prefix)[-1] == {"event": "delayed", "jobId": "1", "delay": str(due)}
    assert raw.zscore(f"{prefix}:q:marker", "1") == score / 4096
    with pytest.raises(JobNotInState):
        queue.add("w").change_delay(10)


def test_change_priority(queue, raw, prefix):
    job = queue.add("a")
    job.change_priority(9)
    assert raw.zscore(f"{prefix}:q:prioritized", "1") == 9 * 2**32 + 1
    assert raw.llen(f"{prefix}:q:wait") == 0 and raw.hget(job.key, "priority") == "9"
    job.change_priority(2, lifo=True)
    assert raw.zscore(f"{prefix}:q:prioritized", "1") == 2 * 2**32
    job.change_priority(0)
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    with pytest.raises(InvalidArgument):
        job.change_priority(2**21)
    raw.delete(job.key)
    with pytest.raises(JobNotFound):
        job.change_priority(1)


def test_update_data_progress_and_logs(queue, raw, prefix):
    job = queue.add("a", {"v": 1}, keep_logs=2)
    job.update_data({"v": 2})
    assert raw.hget(job.key, "data") == '{"v":2}' and job.data == {"v": 2}
    job.update_progress({"pct": 50})
    assert raw.hget(job.key, "progress") == '{"pct":50}'
    assert events(raw, prefix)[-1] == {"event": "progress", "jobId": "1", "data": '{"pct":50}'}
    assert job.log("one") == 1
    assert job.log("two") == 2
    assert job.log("three") == 2
    assert raw.lrange(f"{job.key}:logs", 0, -1) == ["two", "three"]
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        job.update_data({"x": object()})
    assert snapshot(raw, prefix) == before


def test_remove_with_children(queue, raw, prefix, connection):
    other = Queue("o", prefix=prefix, connection=connection)
    parent = queue.add("parent")
    child = other.add("child", parent=parent)
    raw.zadd(f"{prefix}:q:waiting-children", {parent.id: 1})
    raw.lrem(f"{prefix}:q:wait", 0, parent.id)
    assert parent.remove() is True
    assert not raw.exists(parent.key, child.key, f"{parent.key}:dependencies")
    assert raw.llen(f"{prefix}:o:wait") == 0
    # As BullMQ: the last pending child going releases the parent, which then leaves "wait".
    assert events(raw, prefix)[-2:] == [
        {"event": "waiting", "jobId": "1", "prev": "waiting-children"},
        {"event": "removed", "jobId": "1", "prev": "wait"},
    ]
    assert events(raw, prefix, "o")[-1] == {"event": "removed", "jobId": "1", "prev": "wait"}
    assert events(raw, prefix, "o")[-1] == {"event": "removed", "jobId": "1", "prev": "wait"}


def test_remove_child_releases_parent_and_locked_job_is_kept(queue, raw, prefix):
    parent = queue.add("parent")
    child = queue.add("child", parent=parent)
    raw.lrem(f"{prefix}:q:wait", 0, parent.id)
    raw.zadd(f"{prefix}:q:waiting-children", {parent.id: 1})
    raw.set(f"{child.key}:lock", "token")
    before = snapshot(raw, prefix)
    assert child.remove() is False
    assert snapshot(raw, prefix) == before
    raw.delete(f"{child.key}:lock")
    assert child.remove() is True
    assert raw.lindex(f"{prefix}:q:wait", -1) == parent.id
    assert raw.zcard(f"{prefix}:q:waiting-children") == 0


def test_pause_resume_and_legacy_merge(queue, raw, prefix):
    queue.add("a")
    queue.pause()
    assert queue.is_paused() and raw.hget(f"{prefix}:q:meta", "paused") == "1"
    assert not raw.exists(f"{prefix}:q:marker")
    queue.add("b")
    raw.rpush(f"{prefix}:q:paused", "old1", "old2")
    queue.resume()
    assert not queue.is_paused()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["2", "1", "old1", "old2"]
    assert not raw.exists(f"{prefix}:q:paused")
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0
    kinds = [e["event"] for e in events(raw, prefix)]
    assert kinds.count("paused") == 1 and kinds[-1] == "resumed"


def test_drain(queue, raw, prefix):
    queue.add("a")
    queue.add("p", priority=1)
    d = queue.add("d", delay=10_000)
    assert queue.drain() == 2
    assert not raw.exists(f"{prefix}:q:1", f"{prefix}:q:2", f"{prefix}:q:wait")
    assert raw.zrange(f"{prefix}:q:delayed", 0, -1) == [d.id]
    assert queue.drain(delayed=True) == 1
    assert not raw.exists(d.key)


def test_clean(queue, raw, prefix):
    for i in range(4):
        job = queue.add("a")
        raw.lrem(f"{prefix}:q:wait", 0, job.id)
        raw.zadd(f"{prefix}:q:completed", {job.id: 1000 + i})
    assert queue.clean(0, 3, "completed") == ["1", "2", "3"]
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == ["4"]
    assert events(raw, prefix)[-1] == {"event": "cleaned", "count": "3"}
    queue.add("w")
    assert queue.clean(60_000, 0, "wait") == []
    assert queue.clean(0, 0, "waiting") == ["5"]
    with pytest.raises(InvalidArgument):
        queue.clean(0, 0, "nonsense")


def test_obliterate(queue, raw, prefix):
    queue.add_bulk([{"name": "a"}] * 30)
    queue.add("d", delay=1000)
    raw.lpush(f"{prefix}:q:active", "x")
    before = snapshot(raw, prefix)
    with pytest.raises(QueueHasActiveJobs):
        queue.obliterate()
    # As BullMQ 6.7: paused first, then refused; no job touched.
    after = snapshot(raw, prefix)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {f"{prefix}:q:{k}" for k in ("meta", "events", "marker")}  # pause
    assert raw.hexists(f"{prefix}:q:meta", "paused")
    assert events(raw, prefix)[-1] == {"event": "paused"}
    from bullmq_sync import management

    management.obliterate(queue, force=True, count=7)
    assert list(raw.scan_iter(match=f"{prefix}:q:*")) == []


def test_global_concurrency_and_rate_limit_live_in_meta(queue, raw, prefix):
    queue.set_global_concurrency(3)
    assert raw.hget(f"{prefix}:q:meta", "concurrency") == "3"
    assert queue.get_global_concurrency() == 3
    queue.setGlobalRateLimit(10, 1000)
    assert raw.hmget(f"{prefix}:q:meta", "max", "duration") == ["10", "1000"]
    before = snapshot(raw, prefix)
    for bad in (lambda: queue.set_global_concurrency(0), lambda: queue.set_global_rate_limit(1, -5)):
        with pytest.raises(InvalidArgument):
            bad()
    assert snapshot(raw, prefix) == before
    queue.remove_global_concurrency()
    queue.remove_global_rate_limit()
    assert queue.get_global_concurrency() is None
    assert raw.hgetall(f"{prefix}:q:meta").keys() <= {"opts.maxLenEvents", "paused"}

