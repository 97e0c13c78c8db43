"""Reading a queue: get_job(s), counts, states, logs, refresh - including v5 leftovers."""

from __future__ import annotations

import pytest

from bullmq_sync import InvalidArgument, JobState


def _fail(raw, prefix, job_id, finished_on):
    raw.lrem(f"{prefix}:q:wait", 0, job_id)
    raw.zadd(f"{prefix}:q:failed", {job_id: finished_on})
    raw.hset(f"{prefix}:q:{job_id}", mapping={"finishedOn": finished_on, "failedReason": "boom",
                                             "processedOn": finished_on - 1})


def test_counts_and_states(queue, raw, prefix):
    queue.add("w")
    queue.add("p", priority=2)
    queue.add("d", delay=60_000)
    queue.add("f")
    _fail(raw, prefix, "4", 1000)
    raw.zadd(f"{prefix}:q:waiting-children", {"wc": 1})
    raw.lpush(f"{prefix}:q:active", "a1")
    assert queue.get_job_counts() == {
        "active": 1, "completed": 0, "delayed": 1, "failed": 1, "prioritized": 1,
        "waiting": 1, "waiting-children": 1}
    assert queue.get_job_counts("waiting", JobState.FAILED) == {"waiting": 1, "failed": 1}
    assert queue.getJobCounts("delayed") == {"delayed": 1}
    assert queue.count() == 4
    assert queue.get_job_state("1") is JobState.WAITING
    assert queue.get_job_state("2") is JobState.PRIORITIZED
    assert queue.get_job_state("3") is JobState.DELAYED
    assert queue.get_job_state("4") is JobState.FAILED
    assert queue.get_job_state("wc") is JobState.WAITING_CHILDREN
    assert queue.get_job_state("a1") is JobState.ACTIVE
    assert queue.get_job_state("nope") is JobState.UNKNOWN
    assert queue.get_job("1").get_state() == "waiting"


def test_v5_paused_list_counts_and_reads_as_waiting(queue, raw, prefix):
    queue.add("new")
    raw.hset(f"{prefix}:q:legacy", mapping={"name": "old", "data": "{}", "opts": "{}",
                                           "timestamp": "1", "delay": "0", "priority": "3"})
    raw.rpush(f"{prefix}:q:paused", "legacy")
    assert queue.get_job_counts("waiting") == {"waiting": 2}
    assert queue.get_job_counts("paused") == {"paused": 1}
    assert queue.get_job_state("legacy") is JobState.WAITING
    assert [j.id for j in queue.get_waiting()] == ["legacy", "1"]
    assert [j.id for j in queue.get_jobs("waiting")] == ["1", "legacy"]


def test_priority_job_sitting_in_wait_is_waiting(queue, raw, prefix):
    job = queue.add("x", priority=5)
    raw.zrem(f"{prefix}:q:prioritized", job.id)
    raw.lpush(f"{prefix}:q:wait", job.id)
    assert queue.get_job_state(job.id) is JobState.WAITING
    assert [j.id for j in queue.get_waiting()] == [job.id]
    assert queue.get_prioritized() == []


def test_get_jobs_orders_and_pages(queue, raw, prefix):
    for i in range(5):
        queue.add(f"j{i}")
    assert [j.id for j in queue.get_waiting()] == ["1", "2", "3", "4", "5"]
    assert [j.id for j in queue.get_waiting(1, 2)] == ["2", "3"]
    assert [j.id for j in queue.get_jobs(["waiting"])] == ["5", "4", "3", "2", "1"]
    assert [j.id for j in queue.get_jobs(["waiting"], 0, 1)] == ["5", "4"]
    assert queue.get_waiting(10, 20) == []
    for i, job_id in enumerate(["1", "2", "3"]):
        _fail(raw, prefix, job_id, 1000 + i)
    assert [j.id for j in queue.get_failed()] == ["3", "2", "1"]
    assert [j.id for j in queue.get_jobs("failed", asc=True)] == ["1", "2", "3"]
    jobs = queue.get_jobs(["failed", "waiting", "failed"])
    assert [j.id for j in jobs] == ["3", "2", "1", "5", "4"]
    assert jobs[0].failed_reason == "boom" and jobs[0].finished_on == 1002


def test_get_jobs_skips_ids_without_hash(queue, raw, prefix):
    queue.add("a")
    raw.lpush(f"{prefix}:q:wait", "ghost")
    assert [j.id for j in queue.get_waiting()] == ["1"]


def test_refresh_and_logs(queue, raw, prefix):
    job = queue.add("a", {"v": 1})
    raw.hset(job.key, mapping={"progress": "42", "atm": "2"})
    raw.rpush(f"{job.key}:logs", "one", "two", "three")
    assert job.refresh() is True
    assert job.progress == 42 and job.attempts_made == 2
    assert job.get_logs() == ["one", "two", "three"]
    assert queue.get_job_logs(job.id, 0, 1) == (["one", "two"], 3)
    assert queue.get_job_logs(job.id, 0, 1, asc=False) == (["three", "two"], 3)
    raw.delete(job.key)
    assert job.refresh() is False


def test_unknown_type_is_refused(queue):
    with pytest.raises(InvalidArgument):
        queue.get_jobs(["nonsense"])
    with pytest.raises(InvalidArgument):
        queue.get_job_counts("nonsense")
