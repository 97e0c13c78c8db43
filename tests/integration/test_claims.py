"""Tests for promises a mutation run found unguarded: each fails if its one-line claim breaks."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from jobfactory import put_job

from bullmq_sync import Connection, FlowProducer, Job, Queue, Worker
from bullmq_sync.connection import FairConnectionPool

# -- the pool serves waiters first come, first served -----------------------------------------


def test_pool_hands_a_freed_connection_to_the_oldest_waiter_and_newcomers_queue(redis_url):
    pool = FairConnectionPool.from_url(redis_url, max_connections=1, timeout=10)
    held = pool.get_connection()
    order: list[str] = []
    lock = threading.Lock()

    def wait_turn(name: str) -> None:
        connection = pool.get_connection()
        with lock:
            order.append(name)
        time.sleep(0.02)
        pool.release(connection)

    threads = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=wait_turn, args=(name,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(pool._waiters) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(pool._waiters) == len(threads)  # queued in this order
    pool.release(held)
    # The thread that just released asks again at once: it must not jump the line.
    again = pool.get_connection()
    with lock:
        order.append("newcomer")
    pool.release(again)
    for thread in threads:
        thread.join()
    assert order == ["first", "second", "third", "newcomer"]
    pool.disconnect()


# -- NOSCRIPT after SCRIPT FLUSH in the batched path --------------------------------------------


def test_batched_scripts_reload_after_script_flush(local_redis, prefix, log_events):
    from bullmq_sync.job import retry_script_call

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    for job_id in ("1", "2", "3"):
        put_job(raw, prefix, "q", job_id)
    with Queue("q", connection=Connection(local_redis.url), prefix=prefix) as queue:
        queue.get_job_counts()  # warm: scripts preloaded on this pool
        raw.script_flush()
        calls = [retry_script_call(queue, job_id) for job_id in ("1", "2", "3")]
        replies = queue.connection.run_script_many("retryFinishedJob", calls)
    assert replies == [[1, "waiting"]] * 3
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["3", "2", "1"]


# -- retryFinishedJob deletes failedReason, never returnvalue, of a failed job -----------------


def test_retrying_a_failed_job_keeps_its_returnvalue_field(queue, raw, prefix):
    put_job(raw, prefix, "q", "1", state="failed", extra={"returnvalue": '"from before"'})
    Job.from_id(queue, "1").retry("failed")
    fields = raw.hgetall(f"{prefix}:q:1")
    assert "failedReason" not in fields and "finishedOn" not in fields
    assert fields["returnvalue"] == '"from before"'  # BullMQ deletes only failedReason


def test_retrying_a_completed_job_keeps_its_failed_reason_field(queue, raw, prefix):
    put_job(raw, prefix, "q", "1", state="completed", extra={"failedReason": "earlier"})
    Job.from_id(queue, "1").retry("completed")
    fields = raw.hgetall(f"{prefix}:q:1")
    assert "returnvalue" not in fields and fields["failedReason"] == "earlier"


# -- the stalled checker puts a stalled job next in line ------------------------------------------


def test_stalled_job_goes_to_the_front_of_wait(queue, raw, prefix):
    put_job(raw, prefix, "q", "old", state="wait")  # waiting before the stall
    put_job(raw, prefix, "q", "stuck", state="active")
    raw.delete(f"{prefix}:q:stuck:lock")  # its worker died: the lock expired
    worker = Worker("q", lambda job: None, connection=queue.connection, prefix=prefix,
                    stalled_interval=1, max_stalled_count=2, autorun=False)  # checks only
    moved: list[str] = []
    deadline = time.monotonic() + 5
    while not moved and time.monotonic() < deadline:
        moved = worker.check_stalled()  # the first pass marks, a later one moves
        time.sleep(0.01)
    assert moved == ["stuck"]
    # The tail of the wait list is what a worker takes next (BRPOPLPUSH/LMOVE RIGHT).
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["old", "stuck"]


# -- the direction of the worker's immediate retry (retryActiveJob) -----------------------------


@pytest.mark.parametrize("lifo,expected", [(True, ["x", "x", "a"]), (False, ["x", "a", "x"])])
def test_immediate_retry_keeps_the_lifo_direction(queue, raw, prefix, lifo, expected):
    put_job(raw, prefix, "q", "a", state="wait")
    raw.hset(f"{prefix}:q:a", "opts", '{"attempts": 1}')
    queue.add("work", {}, {"jobId": "x", "attempts": 2, "lifo": True})  # x is next in line
    raw.hset(f"{prefix}:q:x", "opts", f'{{"attempts": 2, "lifo": {"true" if lifo else "false"}}}')
    seen: list[str] = []

    def process(job: Job) -> None:
        seen.append(job.id)
        if job.id == "x" and job.attempts_made == 0:
            raise RuntimeError("first try fails; no backoff: retried at once")

    worker = Worker("q", process, connection=queue.connection, prefix=prefix, concurrency=1,
                    drain_delay=0.2)
    worker.start()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert seen == expected


# -- every caller of the prioritized score uses the priority counter ----------------------------


def score_parts(raw, prefix: str, queue: str, job_id: str) -> tuple[int, int]:
    score = int(raw.zscore(f"{prefix}:{queue}:prioritized", job_id))
    return score >> 32, score & 0xFFFFFFFF


def test_prioritized_score_when_adding(queue, raw, prefix):
    queue.add("a", {}, {"priority": 3})
    queue.add_bulk([{"name": "b", "data": {}, "opts": {"priority": 3}}])
    assert score_parts(raw, prefix, "q", "1") == (3, 1)
    assert score_parts(raw, prefix, "q", "2") == (3, 2)
    assert raw.get(f"{prefix}:q:pc") == "2"


def test_prioritized_score_of_a_flow_child(connection, raw, prefix):
    with FlowProducer(connection=connection, prefix=prefix) as flows:
        flows.add({"name": "parent", "queueName": "q", "children": [
            {"name": "child", "queueName": "q", "opts": {"priority": 5, "jobId": "c"}},
        ]})
    assert score_parts(raw, prefix, "q", "c") == (5, 1)


def test_prioritized_score_when_retrying_and_promoting(queue, raw, prefix):
    put_job(raw, prefix, "q", "r", state="failed", priority=2)
    Job.from_id(queue, "r").retry()
    assert score_parts(raw, prefix, "q", "r") == (2, 1)
    delayed = queue.add("d", {}, {"priority": 4, "delay": 60_000})
    delayed.promote()
    assert score_parts(raw, prefix, "q", delayed.id) == (4, 2)


def test_due_delayed_prioritized_jobs_promoted_by_the_worker_take_a_counter(queue, raw, prefix):
    queue.add("d1", {}, {"priority": 7, "delay": 50})
    queue.add("d2", {}, {"priority": 7, "delay": 50})
    time.sleep(0.1)  # both due before the worker looks
    # The worker's fetch promotes due jobs first, then finds the rate limit spent and takes
    # nothing, so the promoted jobs stay where the promotion put them.
    raw.set(f"{prefix}:q:limiter", 1, px=60_000)
    worker = Worker("q", lambda job: None, connection=queue.connection, prefix=prefix,
                    limiter={"max": 1, "duration": 60_000}, drain_delay=0.2)
    worker.start()
    deadline = time.monotonic() + 10
    while raw.zcard(f"{prefix}:q:prioritized") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert score_parts(raw, prefix, "q", "1") == (7, 1)
    assert score_parts(raw, prefix, "q", "2") == (7, 2)
