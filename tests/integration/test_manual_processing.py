"""Manual processing (BullMQ's "manually processing jobs" pattern) against a real Redis.

A Worker without a processor: ``get_next_job(token)`` takes jobs locked with the caller's
token, ``move_to_completed`` / ``move_to_failed`` / ``extend_lock`` finish or keep them, each
leaving exactly the state BullMQ 6.7's moveToActive / moveToFinished / moveToDelayed /
retryJob / extendLock leave.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from helpers import events, wait_for

import bullmq_sync.connection
from bullmq_sync import (
    InvalidArgument,
    Job,
    JobLockMismatch,
    JobLockNotFound,
    Queue,
    UnrecoverableError,
    Worker,
)


def manual_worker(redis_url: str, prefix: str, **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 0.5)
    return Worker("q", None, connection=redis_url, prefix=prefix, **kw)


def custom_backoff(raw: Any, prefix: str, job_id: str, kind: str) -> None:
    """Store a custom backoff type as Node's add does (our add refuses unknown types)."""
    opts = json.loads(raw.hget(f"{prefix}:q:{job_id}", "opts"))
    opts["backoff"] = {"type": kind}
    raw.hset(f"{prefix}:q:{job_id}", "opts", json.dumps(opts))


def snapshot(raw: Any, prefix: str) -> dict[str, Any]:
    """Every key of the queue with its content (to prove a refused call changed nothing)."""
    out: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(f"{prefix}:*")):
        kind = raw.type(key)
        if kind == "hash":
            out[key] = raw.hgetall(key)
        elif kind == "list":
            out[key] = raw.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = raw.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = sorted(raw.smembers(key))
        elif kind == "stream":
            out[key] = raw.xrange(key)
        else:
            out[key] = raw.get(key)
    return out


# -- BullMQ's own example, with await removed and the import changed ------------------------


@pytest.mark.parametrize("succeeded", [True, False])
def test_bullmq_docs_manual_processing_example(local_redis, monkeypatch, succeeded) -> None:
    monkeypatch.setattr(bullmq_sync.connection, "DEFAULT_URL", local_redis.url)
    import redis

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    with Queue("my-queue") as queue:
        added = queue.add("job", {"n": 1})

    # ---- docs.bullmq.io/patterns/manually-fetching-jobs ----
    from bullmq_sync import Worker

    worker = Worker("my-queue")

    # Specify a unique token
    token = "my-token"

    job = worker.getNextJob(token)

    # Access job.data and do something with the job
    # processJob(job.data)
    if succeeded:
        job.moveToCompleted("some return value", token, False)
    else:
        job.moveToFailed(Exception("my error message"), token, False)

    worker.close()
    # ---- end of the docs example ----

    stored = raw.hgetall(f"bull:my-queue:{added.id}")
    assert stored["atm"] == "1" and raw.llen("bull:my-queue:active") == 0
    assert not raw.exists(f"bull:my-queue:{added.id}:lock")
    if succeeded:
        assert stored["returnvalue"] == '"some return value"'
        assert raw.zrange("bull:my-queue:completed", 0, -1) == [added.id]
    else:
        assert stored["failedReason"] == "my error message"
        assert raw.zrange("bull:my-queue:failed", 0, -1) == [added.id]
    raw.close()


def test_bullmq_docs_lock_duration_and_extend_lock(redis_url, prefix, raw) -> None:
    with Queue("my-queue", connection=redis_url, prefix=prefix) as queue:
        queue.add("job", {})
    worker = Worker("my-queue", None, {"lockDuration": 60000, "connection": redis_url,
                                       "prefix": prefix})
    token = "my-token"
    job = worker.getNextJob(token)
    assert 59000 < raw.pttl(f"{prefix}:my-queue:{job.id}:lock") <= 60000
    # Extend the lock 30 more seconds
    job.extendLock(token, 30000)
    assert 29000 < raw.pttl(f"{prefix}:my-queue:{job.id}:lock") <= 30000
    job.moveToCompleted("done", token, False)
    worker.close()


# -- taking a job ---------------------------------------------------------------------------


def test_get_next_job_locks_the_job_with_the_callers_token(queue, raw, prefix, redis_url):
    added = queue.add("a", {"x": 1})
    worker = manual_worker(redis_url, prefix, lock_duration=20000, name="by-hand")
    active: list[Job] = []
    worker.on("active", active.append)  # as Node's getNextJob: an "active" worker event
    job = worker.get_next_job("token-1")
    assert job is not None and job.id == added.id and job.data == {"x": 1}
    assert active == [job]
    assert job.token == "token-1" and job.worker is worker
    assert raw.get(f"{prefix}:q:{job.id}:lock") == "token-1"
    assert 19000 < raw.pttl(f"{prefix}:q:{job.id}:lock") <= 20000
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == [job.id]
    stored = raw.hgetall(f"{prefix}:q:{job.id}")
    assert stored["ats"] == "1" and stored["pb"] == "by-hand" and "processedOn" in stored
    assert [e["event"] for e in events(raw, prefix)][-1] == "active"
    assert worker.get_next_job("token-2", block=False) is None  # nothing else: no job twice
    worker.close()


def test_get_next_job_blocks_until_a_job_arrives(queue, raw, prefix, redis_url):
    worker = manual_worker(redis_url, prefix, drain_delay=20)
    got: list[Any] = []
    taker = threading.Thread(target=lambda: got.append(worker.get_next_job("t")))
    taker.start()
    time.sleep(0.3)
    assert taker.is_alive()  # waiting on the marker
    added = queue.add("late", {})
    taker.join(15)
    assert not taker.is_alive() and got[0] is not None and got[0].id == added.id
    worker.close()


def test_get_next_job_waits_for_a_delayed_job_within_drain_delay(queue, prefix, redis_url):
    added = queue.add("soon", {}, {"delay": 300})
    worker = manual_worker(redis_url, prefix, drain_delay=5)
    assert worker.get_next_job("t", block=False) is None
    job = worker.get_next_job("t")
    assert job is not None and job.id == added.id
    worker.close()


def test_blocking_get_next_job_gives_up_after_drain_delay(queue, prefix, redis_url):
    worker = manual_worker(redis_url, prefix, drain_delay=0.3)
    assert worker.get_next_job("t") is None
    assert worker.getNextJob("t", {"block": True}) is None
    assert worker.getNextJob("t", {}) is None and worker.getNextJob("t", None) is None
    worker.close()


def test_close_ends_a_blocked_get_next_job(queue, prefix, redis_url):
    worker = manual_worker(redis_url, prefix, drain_delay=60)
    got: list[Any] = []
    taker = threading.Thread(target=lambda: got.append(worker.get_next_job("t")))
    taker.start()
    time.sleep(0.3)
    worker.close()
    taker.join(10)  # well before the 60 s drain delay
    assert not taker.is_alive() and got == [None]
    assert worker.get_next_job("t") is None  # closed: nothing taken
    queue.add("after", {})
    assert worker.get_next_job("t") is None


def test_a_paused_worker_or_queue_hands_out_nothing(queue, raw, prefix, redis_url):
    queue.add("a", {})
    worker = manual_worker(redis_url, prefix)
    worker.pause()
    assert worker.get_next_job("t") is None
    worker.resume()  # starts nothing: there is no processor
    assert not worker.running
    queue.pause()
    assert worker.get_next_job("t", block=False) is None
    queue.resume()
    assert worker.get_next_job("t") is not None
    worker.close()


# -- finishing ------------------------------------------------------------------------------


def test_move_to_completed_stores_the_value_and_releases_the_lock(queue, raw, prefix, redis_url):
    added = queue.add("a", {})
    worker = manual_worker(redis_url, prefix)
    job = worker.get_next_job("t")
    assert job.move_to_completed({"sum": 3}, "t") is None
    stored = raw.hgetall(f"{prefix}:q:{added.id}")
    assert json.loads(stored["returnvalue"]) == {"sum": 3} and stored["atm"] == "1"
    assert job.return_value == {"sum": 3} and job.attempts_made == 1
    assert job.finished_on == int(stored["finishedOn"])
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [added.id]
    assert not raw.exists(f"{prefix}:q:{added.id}:lock")
    assert raw.llen(f"{prefix}:q:active") == 0
    completed = [e for e in events(raw, prefix) if e["event"] == "completed"]
    assert completed == [{"event": "completed", "jobId": added.id, "returnvalue": '{"sum": 3}',
                          "prev": "active"}]
    worker.close()


def test_a_wrong_or_lost_token_is_refused_and_changes_nothing(queue, raw, prefix, redis_url):
    queue.add("a", {}, {"attempts": 3, "backoff": 1000})
    worker = manual_worker(redis_url, prefix)
    job = worker.get_next_job("mine")
    before = snapshot(raw, prefix)
    for attempt in (
        lambda: job.move_to_completed(1, "theirs"),
        lambda: job.move_to_failed(Exception("x"), "theirs"),
        lambda: job.extend_lock("theirs", 1000),
    ):
        with pytest.raises(JobLockMismatch) as info:
            attempt()
        assert info.value.code == -6 and info.value.job_id == job.id
    assert snapshot(raw, prefix) == before
    raw.delete(f"{prefix}:q:{job.id}:lock")  # the lock expired
    before = snapshot(raw, prefix)
    for attempt in (
        lambda: job.move_to_completed(1, "mine"),
        lambda: job.move_to_failed(Exception("x"), "mine"),
        lambda: job.extend_lock("mine", 1000),
    ):
        with pytest.raises(JobLockNotFound) as lost:
            attempt()
        assert lost.value.code == -2
    assert snapshot(raw, prefix) == before
    worker.close()


def test_fetch_next_hands_over_the_next_job_with_the_same_token(queue, raw, prefix, redis_url):
    first, second, third = (queue.add(n, {"n": n}) for n in ("a", "b", "c"))
    worker = manual_worker(redis_url, prefix, lock_duration=15000)
    job = worker.get_next_job("tok")
    assert job.id == first.id
    nxt = job.move_to_completed("one", "tok", fetch_next=True)
    assert nxt is not None and nxt.id == second.id and nxt.data == {"n": "b"}
    assert nxt.token == "tok" and nxt.worker is worker
    assert raw.get(f"{prefix}:q:{second.id}:lock") == "tok"
    assert 14000 < raw.pttl(f"{prefix}:q:{second.id}:lock") <= 15000
    last = nxt.moveToCompleted("two", "tok")  # Node's default: fetchNext = true
    assert last is not None and last.id == third.id
    assert last.move_to_failed(UnrecoverableError("no"), "tok", fetch_next=True) is None
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [first.id, second.id]
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == [third.id]
    assert raw.llen(f"{prefix}:q:active") == 0
    assert "drained" in [e["event"] for e in events(raw, prefix)]
    worker.close()


def test_the_docs_loop_with_fetch_next(queue, raw, prefix, redis_url):
    """BullMQ's "looping through jobs": moveToCompleted's default fetches the next job."""
    ids = [queue.add("loop", {"i": i}).id for i in range(5)]
    worker = manual_worker(redis_url, prefix)
    token = "loop-token"
    done: list[str] = []
    job = worker.get_next_job(token)
    while job is not None:
        done.append(job.id)
        job = job.moveToCompleted(job.data["i"] * 2, token)
    assert done == ids
    assert [raw.hget(f"{prefix}:q:{i}", "returnvalue") for i in ids] == ["0", "2", "4", "6", "8"]
    worker.close()


# -- failing: attempts and backoff as BullMQ's moveToFailed --------------------------------


def test_move_to_failed_with_backoff_delays_the_retry(queue, raw, prefix, redis_url):
    added = queue.add("a", {}, {"attempts": 3, "backoff": {"type": "exponential", "delay": 400}})
    worker = manual_worker(redis_url, prefix, drain_delay=5)
    job = worker.get_next_job("t")
    before = int(time.time() * 1000)
    assert job.move_to_failed(Exception("first"), "t") is None
    stored = raw.hgetall(f"{prefix}:q:{added.id}")
    assert stored["atm"] == "1" and stored["failedReason"] == "first"
    assert stored["delay"] == "400" and job.delay == 400
    assert json.loads(stored["stacktrace"])[0].startswith("Exception: first")
    due = int(raw.zscore(f"{prefix}:q:delayed", added.id)) // 4096
    assert before + 400 <= due <= int(time.time() * 1000) + 400
    assert not raw.exists(f"{prefix}:q:{added.id}:lock")
    delayed = [e for e in events(raw, prefix) if e["event"] == "delayed"]
    assert delayed[-1]["jobId"] == added.id and int(delayed[-1]["delay"]) == due

    job = worker.get_next_job("t")  # waits for the backoff (within drain_delay)
    assert job is not None and job.id == added.id and job.attempts_made == 1
    job.move_to_failed(ValueError("second"), "t")
    assert int(raw.zscore(f"{prefix}:q:delayed", added.id)) // 4096 - int(time.time() * 1000) > 600

    raw.zadd(f"{prefix}:q:delayed", {added.id: 0})  # make it due now
    job = worker.get_next_job("t")
    job.move_to_failed(Exception("third"), "t")  # attempts exhausted
    stored = raw.hgetall(f"{prefix}:q:{added.id}")
    assert stored["atm"] == "3" and stored["failedReason"] == "third"
    assert len(json.loads(stored["stacktrace"])) == 3
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == [added.id]
    names = [e["event"] for e in events(raw, prefix)]
    assert names[-3:] == ["failed", "retries-exhausted", "drained"]
    worker.close()


def test_move_to_failed_without_backoff_goes_straight_back(queue, raw, prefix, redis_url):
    added = queue.add("a", {}, {"attempts": 2})
    worker = manual_worker(redis_url, prefix)
    job = worker.get_next_job("t")
    assert job.move_to_failed("a plain message", "t", fetch_next=True) is None  # retryJob: no fetch
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [added.id]
    stored = raw.hgetall(f"{prefix}:q:{added.id}")
    assert stored["atm"] == "1" and stored["failedReason"] == "a plain message"
    again = worker.get_next_job("t")
    assert again.id == added.id and again.attempts_made == 1
    again.move_to_failed(UnrecoverableError("stop"), "t")
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == [added.id]
    worker.close()


def test_unrecoverable_and_worker_settings_apply(queue, raw, prefix, redis_url):
    seen: list[tuple[int, str]] = []

    def strategy(attempts_made: int, kind: str, error: BaseException, job: Job) -> int:
        seen.append((attempts_made, kind))
        return 12345

    a = queue.add("a", {}, {"attempts": 5})
    custom_backoff(raw, prefix, a.id, "mine")
    b = queue.add("b", {}, {"attempts": 5})
    c = queue.add("c", {})
    worker = manual_worker(
        redis_url, prefix, backoff_strategy=strategy, remove_on_fail=True,
        remove_on_complete={"count": 0}, metrics={"maxDataPoints": 10},
    )
    job = worker.get_next_job("t")
    job.move_to_failed(Exception("custom"), "t")
    assert seen == [(1, "mine")] and raw.hget(f"{prefix}:q:{a.id}", "delay") == "12345"
    job = worker.get_next_job("t")
    assert job.id == b.id
    job.move_to_failed(UnrecoverableError("fatal"), "t")  # at once, despite 5 attempts
    assert not raw.exists(f"{prefix}:q:{b.id}")  # removeOnFail of the worker
    job = worker.get_next_job("t")
    job.move_to_completed(None, "t")
    assert not raw.exists(f"{prefix}:q:{c.id}")
    assert raw.hget(f"{prefix}:q:metrics:completed", "count") == "1"
    assert raw.hget(f"{prefix}:q:metrics:failed", "count") == "1"
    worker.close()


def test_a_refreshed_job_keeps_its_worker_and_token(queue, raw, prefix, redis_url):
    added = queue.add("a", {"n": 1})
    worker = manual_worker(redis_url, prefix, remove_on_complete=True)
    job = worker.get_next_job("t")
    raw.hset(f"{prefix}:q:{added.id}", "data", json.dumps({"n": 2}))
    assert job.refresh() is True
    assert job.data == {"n": 2}  # the stored fields are reloaded ...
    assert job.worker is worker and job.token == "t"  # ... what was not stored stays
    job.move_to_completed("done", "t")
    assert not raw.exists(f"{prefix}:q:{added.id}")  # the worker's removeOnComplete applied
    assert raw.zcard(f"{prefix}:q:completed") == 0
    worker.close()


def test_the_worker_limiter_applies_to_fetch_next(queue, raw, prefix, redis_url):
    for n in range(3):
        queue.add("a", {"n": n})
    worker = manual_worker(redis_url, prefix, limiter={"max": 2, "duration": 60000})
    job = worker.get_next_job("t")
    job = job.move_to_completed(1, "t", fetch_next=True)
    assert job is not None
    assert job.move_to_completed(2, "t", fetch_next=True) is None  # limited: 2 per minute
    assert raw.get(f"{prefix}:q:limiter") == "2" and raw.llen(f"{prefix}:q:wait") == 1
    assert worker.get_next_job("t", block=False) is None
    worker.close()


# -- locks and the stalled checker ----------------------------------------------------------


def test_a_manually_held_job_without_extended_lock_is_stalled(queue, raw, prefix, redis_url):
    added = queue.add("a", {})
    worker = manual_worker(redis_url, prefix, lock_duration=300, stalled_interval=1)
    stalled: list[str] = []
    worker.on("stalled", stalled.append)
    job = worker.get_next_job("t")
    assert worker.check_stalled() == []  # marks the active jobs as suspects
    wait_for(lambda: not raw.exists(f"{prefix}:q:{added.id}:lock"))
    time.sleep(0.01)
    assert worker.check_stalled() == [added.id]
    assert stalled == [added.id]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [added.id]
    assert raw.hget(f"{prefix}:q:{added.id}", "stc") == "1"
    with pytest.raises(JobLockNotFound):
        job.move_to_completed("late", "t")
    again = worker.get_next_job("t2")
    assert again.id == added.id and again.attempts_started == 2
    worker.close()


def test_an_extended_lock_keeps_the_job(queue, raw, prefix, redis_url):
    added = queue.add("a", {})
    worker = manual_worker(redis_url, prefix, lock_duration=300, stalled_interval=1)
    job = worker.get_next_job("t")
    assert worker.check_stalled() == []
    assert raw.sismember(f"{prefix}:q:stalled", added.id)
    job.extend_lock("t", 10000)
    assert not raw.sismember(f"{prefix}:q:stalled", added.id)  # as BullMQ: no longer suspect
    time.sleep(0.4)  # the original lock would have expired
    assert worker.check_stalled() == []
    time.sleep(0.01)
    assert worker.check_stalled() == []
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == [added.id]
    job.move_to_completed("kept", "t")
    worker.close()


def test_a_scheduler_job_taken_by_hand_schedules_the_next_iteration(queue, raw, prefix, redis_url):
    queue.upsert_job_scheduler("tick", {"every": 60000}, {"name": "tick"})
    assert raw.zcard(f"{prefix}:q:delayed") == 0 and raw.llen(f"{prefix}:q:wait") == 1
    worker = manual_worker(redis_url, prefix)
    job = worker.get_next_job("t")
    assert job is not None and job.repeat_job_key == "tick"
    delayed = raw.zrange(f"{prefix}:q:delayed", 0, -1)
    assert len(delayed) == 1 and delayed[0].startswith("repeat:tick:")  # as Node's getNextJob
    job.move_to_completed(None, "t")
    worker.close()


# -- many threads, each with its own tokens -------------------------------------------------


def test_many_threads_take_each_job_exactly_once(queue, raw, prefix, redis_url):
    total, threads = 300, 8
    queue.add_bulk([{"name": "n", "data": {"i": i}} for i in range(total)])
    worker = manual_worker(redis_url, prefix, drain_delay=0.5)
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        serial = 0
        try:
            while True:
                serial += 1
                token = f"thread-{index}-{serial}"
                job = worker.get_next_job(token)
                if job is None:
                    return
                assert raw.get(f"{prefix}:q:{job.id}:lock") == token
                with lock:
                    taken.append(job.id)
                if serial % 3 == 0:
                    job.extend_lock(token, 20000)
                job.move_to_completed(f"{index}:{serial}", token)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    assert errors == []
    counts = Counter(taken)
    assert len(counts) == total and max(counts.values()) == 1
    assert raw.zcard(f"{prefix}:q:completed") == total and raw.llen(f"{prefix}:q:active") == 0
    workers_used = {raw.hget(f"{prefix}:q:{i}", "returnvalue").split(":")[0] for i in counts}
    assert len(workers_used) > 1
    worker.close()


def test_threads_waiting_together_share_the_wake_up(queue, raw, prefix, redis_url):
    """Several threads block at once (one on the marker, the rest on its wake-up)."""
    worker = manual_worker(redis_url, prefix, drain_delay=3)
    results: list[Any] = []
    lock = threading.Lock()

    def take(index: int) -> None:
        job = worker.get_next_job(f"waiter-{index}")
        with lock:
            results.append((index, job))

    pool = [threading.Thread(target=take, args=(i,)) for i in range(5)]
    for thread in pool:
        thread.start()
    time.sleep(0.3)
    first, second = queue.add("a", {}).id, queue.add("b", {}).id
    for thread in pool:
        thread.join(15)
    got = [(index, job) for index, job in results if job is not None]
    assert sorted(job.id for _, job in got) == sorted([first, second])
    for index, job in got:
        assert raw.get(f"{prefix}:q:{job.id}:lock") == f"waiter-{index}"
    assert len(results) == 5
    worker.close()


# -- refused before anything is sent --------------------------------------------------------


def test_bad_input_is_refused_and_redis_is_unchanged(queue, raw, prefix, redis_url):
    added = queue.add("a", {}, {"attempts": 3})
    custom_backoff(raw, prefix, added.id, "nobody-knows")
    worker = manual_worker(redis_url, prefix)
    before = snapshot(raw, prefix)
    for bad in (
        lambda: worker.get_next_job(""),
        lambda: worker.get_next_job(None),  # type: ignore[arg-type]
        lambda: worker.get_next_job(42),  # type: ignore[arg-type]
        lambda: worker.get_next_job("t", block="yes"),  # type: ignore[arg-type]
        lambda: worker.getNextJob("t", {"blok": True}),
    ):
        with pytest.raises(InvalidArgument):
            bad()
    with pytest.raises(InvalidArgument, match="'blok'.*accepted: block"):
        worker.getNextJob("t", {"blok": True})
    assert snapshot(raw, prefix) == before

    job = worker.get_next_job("t")
    before = snapshot(raw, prefix)
    for bad in (
        lambda: job.move_to_completed(object(), "t"),
        lambda: job.move_to_completed(1, ""),
        lambda: job.move_to_completed(1),
        lambda: job.move_to_completed(1, "t", fetch_next="no"),  # type: ignore[arg-type]
        lambda: job.move_to_failed(42, "t"),  # type: ignore[arg-type]
        lambda: job.move_to_failed(Exception("x"), None),
        lambda: job.move_to_failed(Exception("x"), "t"),  # unknown backoff type
        lambda: job.extend_lock("t", 0),
        lambda: job.extend_lock("t", "30s"),  # type: ignore[arg-type]
        lambda: job.extend_lock("t", True),  # type: ignore[arg-type]
        lambda: job.extend_lock(5, 1000),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidArgument):
            bad()
    assert snapshot(raw, prefix) == before
    worker.close()


def test_worker_without_processor_cannot_start_and_a_running_worker_refuses(
    queue, raw, prefix, redis_url
):
    queue.add("a", {})
    manual = manual_worker(redis_url, prefix, autorun=True)  # as BullMQ: no processor, no run
    assert not manual.running
    with pytest.raises(InvalidArgument, match="No process function"):
        manual.start()
    with manual:  # a context manager that only closes
        pass
    assert manual.closing
    with pytest.raises(InvalidArgument, match="processor must be a callable"):
        Worker("q", 42, connection=redis_url, prefix=prefix)  # type: ignore[arg-type]
    hold = threading.Event()
    running = Worker("q", lambda job: hold.wait(5), connection=redis_url, prefix=prefix)
    with running:
        wait_for(lambda: raw.llen(f"{prefix}:q:active") == 1)
        before = raw.lrange(f"{prefix}:q:wait", 0, -1)
        with pytest.raises(InvalidArgument, match="not running a processor"):
            running.get_next_job("t")
        assert raw.lrange(f"{prefix}:q:wait", 0, -1) == before
        hold.set()


def test_transitions_are_logged(queue, prefix, redis_url, log_events):
    queue.add("a", {}, {"attempts": 2})
    worker = manual_worker(redis_url, prefix)
    job = worker.get_next_job("t")
    job.move_to_failed(Exception("x"), "t")
    job = worker.get_next_job("t")
    job.extend_lock("t", 5000)
    job.move_to_completed(1, "t")
    worker.close()
    moves = [(e["event"], e.get("from_state"), e.get("to_state")) for e in log_events
             if e.get("manual")]
    assert moves == [
        ("job.active", "waiting", "active"),
        ("job.retrying", "active", "waiting"),
        ("job.active", "waiting", "active"),
        ("job.completed", "active", "completed"),
    ]
    assert any(e["event"] == "job.lock_extended" for e in log_events)
    assert all("data" not in e for e in log_events)
