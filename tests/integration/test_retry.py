"""Job.retry against a real Redis: the exact state BullMQ 6.7's reprocessJob leaves."""

from __future__ import annotations

import threading

import pytest
import redis
from jobfactory import put_job, snapshot

from bullmq_sync import (
    Connection,
    InvalidArgument,
    Job,
    JobNotFound,
    JobNotInState,
    Queue,
)


def last_event(raw, prefix):
    entries = raw.xrevrange(f"{prefix}:q:events", count=1)
    return entries[0][1] if entries else None


def test_retry_failed_job_moves_it_to_the_head_of_wait(queue, raw, prefix):
    put_job(raw, prefix, "q", "1")
    raw.lpush(f"{prefix}:q:wait", "older")
    job = Job.from_id(queue, "1")
    job.retry()

    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1", "older"]
    assert raw.zscore(f"{prefix}:q:failed", "1") is None
    fields = raw.hgetall(f"{prefix}:q:1")
    for gone in ("finishedOn", "processedOn", "failedReason"):
        assert gone not in fields
    assert fields["stacktrace"] == '["Error: boom"]'  # BullMQ keeps it
    assert fields["atm"] == "1" and fields["ats"] == "1"
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0
    assert last_event(raw, prefix) == {"event": "waiting", "jobId": "1", "prev": "failed"}
    assert raw.hget(f"{prefix}:q:meta", "opts.maxLenEvents") == "10000"
    assert (job.failed_reason, job.finished_on, job.processed_on, job.return_value) == (None,) * 4


def test_retry_lifo_job_goes_to_the_tail(queue, raw, prefix):
    put_job(raw, prefix, "q", "1", lifo=True)
    raw.lpush(f"{prefix}:q:wait", "older")
    Job.from_id(queue, "1").retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["older", "1"]


def test_retry_prioritized_job_goes_to_prioritized_with_a_counter_score(queue, raw, prefix):
    raw.set(f"{prefix}:q:pc", 6)
    put_job(raw, prefix, "q", "1", priority=5, lifo=True)
    Job.from_id(queue, "1").retry()
    assert raw.llen(f"{prefix}:q:wait") == 0
    assert raw.get(f"{prefix}:q:pc") == "7"
    assert raw.zscore(f"{prefix}:q:prioritized", "1") == 5 * 2**32 + 7
    assert last_event(raw, prefix) == {"event": "waiting", "jobId": "1", "prev": "failed"}


def test_retry_completed_job_clears_returnvalue(queue, raw, prefix):
    put_job(raw, prefix, "q", "1", state="completed", extra={"failedReason": "earlier attempt"})
    job = Job.from_id(queue, "1")
    job.retry("completed")
    fields = raw.hgetall(f"{prefix}:q:1")
    assert "returnvalue" not in fields and "finishedOn" not in fields
    assert fields["failedReason"] == "earlier attempt"  # as BullMQ: only the state's property
    assert raw.zscore(f"{prefix}:q:completed", "1") is None
    assert last_event(raw, prefix)["prev"] == "completed"
    assert job.return_value is None and job.failed_reason is None


@pytest.mark.parametrize(
    ("call", "atm", "ats"),
    [
        (lambda j: j.retry(reset_attempts_made=True), False, True),
        (lambda j: j.retry("failed", {"resetAttemptsMade": True}), False, True),
        (lambda j: j.retry("failed", {"resetAttemptsStarted": True}), True, False),
        (lambda j: j.retry(reset_attempts_made=True, reset_attempts_started=True), False, False),
    ],
)
def test_reset_flags(queue, raw, prefix, call, atm, ats):
    put_job(raw, prefix, "q", "1")
    job = Job.fromId(queue, "1")
    call(job)
    fields = raw.hgetall(f"{prefix}:q:1")
    assert ("atm" in fields) is atm and ("ats" in fields) is ats
    assert job.attempts_made == (1 if atm else 0)
    assert job.attemptsStarted == (1 if ats else 0)


def test_paused_queue_gets_the_job_but_no_marker(queue, raw, prefix):
    put_job(raw, prefix, "q", "1")
    raw.hset(f"{prefix}:q:meta", "paused", 1)
    Job.from_id(queue, "1").retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert not raw.exists(f"{prefix}:q:marker")
    assert not raw.exists(f"{prefix}:q:paused")


def test_queue_at_its_concurrency_limit_gets_no_marker(queue, raw, prefix):
    put_job(raw, prefix, "q", "1")
    raw.hset(f"{prefix}:q:meta", "concurrency", 1)
    raw.lpush(f"{prefix}:q:active", "busy")
    Job.from_id(queue, "1").retry()
    assert not raw.exists(f"{prefix}:q:marker")
    raw.hset(f"{prefix}:q:meta", "concurrency", 2)
    put_job(raw, prefix, "q", "2")
    Job.from_id(queue, "2").retry()
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0


@pytest.mark.parametrize(
    ("flag", "recorded_in", "restored"),
    [
        ("fpof", "unsuccessful", True),
        ("idof", "failed", True),
        ("cpof", "failed", True),
        ("rdof", None, False),
    ],
)
def test_failed_child_goes_back_into_its_parents_dependencies(queue, raw, prefix, flag, recorded_in, restored):
    parent = f"{prefix}:p:parent"
    raw.hset(parent, mapping={"name": "parent", "data": "{}", "opts": "{}", "timestamp": 1})
    raw.zadd(f"{prefix}:p:waiting-children", {"parent": 1})
    put_job(raw, prefix, "q", "c1", parent_key=parent, parent_flag=flag)
    child_key = f"{prefix}:q:c1"
    if recorded_in == "unsuccessful":
        raw.zadd(f"{parent}:unsuccessful", {child_key: 5})
    elif recorded_in == "failed":
        raw.hset(f"{parent}:failed", child_key, "boom")
    Job.from_id(queue, "c1").retry()
    assert bool(raw.sismember(f"{parent}:dependencies", child_key)) is restored
    assert not raw.exists(f"{parent}:unsuccessful") and not raw.exists(f"{parent}:failed")
    assert raw.zscore(f"{prefix}:p:waiting-children", "parent") == 1  # parent untouched


def test_completed_child_leaves_processed(queue, raw, prefix):
    parent = f"{prefix}:q:parent"
    raw.hset(parent, mapping={"name": "parent", "data": "{}", "opts": "{}", "timestamp": 1})
    put_job(raw, prefix, "q", "c1", state="completed", parent_key=parent)
    raw.hset(f"{parent}:processed", f"{prefix}:q:c1", '{"ok":true}')
    Job.from_id(queue, "c1").retry("completed")
    assert raw.smembers(f"{parent}:dependencies") == {f"{prefix}:q:c1"}
    assert not raw.exists(f"{parent}:processed")


def test_missing_job_raises_job_not_found_and_changes_nothing(queue, raw, prefix):
    put_job(raw, prefix, "q", "1")
    job = Job.from_id(queue, "1")
    raw.delete(f"{prefix}:q:1")
    before = snapshot(raw, prefix)
    with pytest.raises(JobNotFound) as info:
        job.retry()
    assert info.value.code == -1 and info.value.job_id == "1" and info.value.queue == "q"
    assert snapshot(raw, prefix) == before


@pytest.mark.parametrize("state", ["wait", "active", "delayed", "completed"])
def test_job_in_another_state_raises_not_in_state_and_changes_nothing(queue, raw, prefix, state):
    put_job(raw, prefix, "q", "1", state=state)
    before = snapshot(raw, prefix)
    with pytest.raises(JobNotInState) as info:
        Job.from_id(queue, "1").retry("failed")
    assert info.value.code == -3 and info.value.state == "failed"
    actual = "waiting" if state == "wait" else state
    assert info.value.actual_state == actual
    assert str(info.value) == f"Job 1 is {actual}, not failed. reprocessJob"
    assert snapshot(raw, prefix) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda j: j.retry("active"),
        lambda j: j.retry("wait"),
        lambda j: j.retry("faild"),
        lambda j: j.retry("failed", {"resetAttempts": True}),
    ],
)
def test_bad_arguments_raise_before_redis(queue, raw, prefix, call):
    put_job(raw, prefix, "q", "1")
    job = Job.from_id(queue, "1")
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        call(job)
    assert snapshot(raw, prefix) == before


def test_from_id_returns_none_for_a_missing_job(queue):
    assert Job.from_id(queue, "nope") is None
    assert queue.get_job("nope") is None


def test_job_attributes_are_typed(queue, raw, prefix):
    put_job(raw, prefix, "q", "1", priority=3)
    job = queue.get_job("1")
    assert job.name == "work" and job.data == {"n": "1"} and job.priority == 3
    assert job.opts == {"attempts": 1, "priority": 3}
    assert isinstance(job.timestamp, int) and isinstance(job.finished_on, int)
    assert job.failedReason == "boom" and job.stacktrace == ["Error: boom"]
    assert job.to_dict()["attemptsMade"] == 1


def test_32_threads_racing_to_retry_one_job(queue, raw, prefix):
    put_job(raw, prefix, "q", "1")
    jobs = [Job.from_id(queue, "1") for _ in range(32)]
    barrier = threading.Barrier(32)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(job):
        barrier.wait()
        try:
            job.retry()
            result = "ok"
        except JobNotInState:
            result = "not-in-state"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["not-in-state"] * 31 + ["ok"]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    events = [e for _, e in raw.xrange(f"{prefix}:q:events") if e["event"] == "waiting"]
    assert len(events) == 1


def test_many_queues_share_one_connection(redis_url, raw, prefix):
    with Connection(redis_url, max_connections=4) as shared:
        queues = [Queue(f"q{i}", connection=shared, prefix=prefix) for i in range(5)]
        for i, q in enumerate(queues):
            put_job(raw, prefix, f"q{i}", "1")
            Job.from_id(q, "1").retry()
            q.close()
        assert not shared.closed  # queues never close a connection they were given
        assert shared.pool.peak_in_use <= 4
    assert shared.closed


def test_queue_context_manager_closes_its_own_connection(redis_url, prefix):
    with Queue("q", connection=redis_url, prefix=prefix) as q:
        connection = q.connection
    assert connection.closed


def test_borrowed_client_with_decoded_responses_works_and_stays_open(redis_url, raw, prefix):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    put_job(raw, prefix, "q", "1")
    with Queue("q", {"connection": client, "prefix": prefix}) as q:
        job = Job.from_id(q, "1")
        assert job.data == {"n": "1"}
        job.retry()
    assert client.ping()  # not closed by us
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    client.close()


def test_borrowed_pool_bytes_responses(redis_url, raw, prefix):
    pool = redis.ConnectionPool.from_url(redis_url)
    put_job(raw, prefix, "q", "1", state="completed")
    with Queue("q", connection=pool, prefix=prefix) as q:
        job = q.get_job("1")
        assert job.return_value == {"ok": True}
        job.retry("completed")
    pool.disconnect()
