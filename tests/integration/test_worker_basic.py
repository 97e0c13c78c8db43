"""The synchronous Worker against a real Redis: the exact state BullMQ 6.7's worker leaves."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import events, wait_for
from jobfactory import put_job, snapshot

from bullmq_sync import InvalidArgument, Job, Queue, UnrecoverableError, Worker
from bullmq_sync.backoff import builtin_delay, retry_delay


def make_worker(redis_url: str, prefix: str, processor: Callable[[Job], Any], **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 1)
    kw.setdefault("autorun", False)  # started by `with`: processors may use the name
    kw.setdefault("on_error", lambda e: print("WORKER ERROR", repr(e)))
    return Worker("q", processor, connection=redis_url, prefix=prefix, **kw)


def test_completes_a_job_with_its_return_value(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {"n": 21})
    seen: list[tuple[str, Any]] = []
    with make_worker(redis_url, prefix, lambda j: {"double": j.data["n"] * 2}, name="py-w",
                     on_completed=lambda j, r: seen.append((j.id, r))):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert json.loads(fields["returnvalue"]) == {"double": 42}
    assert fields["atm"] == "1" and fields["ats"] == "1" and fields["pb"] == "py-w"
    assert int(fields["finishedOn"]) >= int(fields["processedOn"])
    assert raw.zscore(f"{prefix}:q:completed", job.id) == int(fields["finishedOn"])
    assert raw.llen(f"{prefix}:q:active") == 0
    assert not raw.exists(f"{prefix}:q:{job.id}:lock")
    assert raw.sismember(f"{prefix}:q:stalled", job.id) == 0
    tail = [e for e in events(raw, prefix) if e["event"] in ("active", "completed", "drained")]
    assert tail == [
        {"event": "active", "jobId": job.id, "prev": "waiting"},
        {"event": "completed", "jobId": job.id, "returnvalue": '{"double": 42}', "prev": "active"},
        {"event": "drained"},
    ]
    assert seen == [(job.id, {"double": 42})]


def test_lock_token_is_worker_uuid_and_counter(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {})
    tokens: list[str | None] = []
    worker = make_worker(redis_url, prefix, lambda j: tokens.append(raw.get(f"{prefix}:q:{j.id}:lock")))
    with worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert tokens[0] is not None
    uid, _, counter = tokens[0].rpartition(":")
    assert uid == worker.id and counter.isdigit()


def test_final_failure_stores_raw_message_and_stacktrace(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 1, "stackTraceLimit": 5})
    failures: list[str] = []

    def boom(j: Job) -> None:
        raise ValueError('bad "thing"')

    with make_worker(redis_url, prefix, boom, on_failed=lambda j, e: failures.append(str(e))):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert fields["failedReason"] == 'bad "thing"'
    stack = json.loads(fields["stacktrace"])
    assert len(stack) == 1 and "ValueError" in stack[0]
    assert fields["atm"] == "1" and "defa" not in fields
    evs = events(raw, prefix)
    failed = [e for e in evs if e["event"] == "failed"]
    assert failed == [{"event": "failed", "jobId": job.id, "failedReason": 'bad "thing"', "prev": "active"}]
    assert {"event": "retries-exhausted", "jobId": job.id, "attemptsMade": "1"} in evs
    assert failures == ['bad "thing"']


def test_immediate_retries_then_success(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 3})
    calls: list[int] = []

    def flaky(j: Job) -> str:
        calls.append(j.attempts_made)
        if j.attempts_made < 2:
            raise RuntimeError(f"fail {j.attempts_made}")
        return "ok"

    with make_worker(redis_url, prefix, flaky):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert calls == [0, 1, 2]
    assert fields["atm"] == "3" and fields["ats"] == "3"
    assert fields["failedReason"] == "fail 1"  # kept from the last failed attempt, as BullMQ
    assert len(json.loads(fields["stacktrace"])) == 2
    evs = events(raw, prefix)
    assert evs.count({"event": "waiting", "jobId": job.id, "prev": "active"}) == 2
    assert not [e for e in evs if e["event"] in ("failed", "delayed", "retries-exhausted")]


def test_fixed_backoff_goes_through_delayed(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 3, "backoff": {"type": "fixed", "delay": 300}})
    starts: list[float] = []

    def failing(j: Job) -> None:
        starts.append(time.time())
        raise RuntimeError("again")

    with make_worker(redis_url, prefix, failing):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    assert len(starts) == 3
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= 0.29 for g in gaps), gaps
    evs = events(raw, prefix)
    delayed = [e for e in evs if e["event"] == "delayed"]
    assert len(delayed) == 2 and all(e["jobId"] == job.id for e in delayed)
    promoted = [e for e in evs if e == {"event": "waiting", "jobId": job.id, "prev": "delayed"}]
    assert len(promoted) == 2
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert fields["delay"] == "0" and fields["atm"] == "3"
    assert {"event": "retries-exhausted", "jobId": job.id, "attemptsMade": "3"} in evs


def test_delayed_score_and_event_of_a_backoff(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 2, "backoff": 60000})
    before = int(time.time() * 1000)

    def failing(j: Job) -> None:
        raise RuntimeError("later")

    with make_worker(redis_url, prefix, failing):
        wait_for(lambda: raw.zcard(f"{prefix}:q:delayed") == 1)
    after = int(time.time() * 1000)
    score = raw.zscore(f"{prefix}:q:delayed", job.id)
    due = int(score) // 4096
    assert before + 60000 <= due <= after + 60000 and score == due * 4096
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert fields["delay"] == "60000" and fields["atm"] == "1" and fields["failedReason"] == "later"
    assert events(raw, prefix)[-1] == {"event": "delayed", "jobId": job.id, "delay": str(due)}


def test_exponential_and_custom_backoff_math() -> None:
    spec = {"type": "exponential", "delay": 1000}
    assert [builtin_delay(spec, n) for n in (1, 2, 3, 4)] == [1000, 2000, 4000, 8000]
    assert builtin_delay({"type": "fixed", "delay": 500}, 7) == 500
    for _ in range(50):
        value = builtin_delay({"type": "fixed", "delay": 1000, "jitter": 0.5}, 1)
        assert value is not None and 500 <= value < 1000
    calls: list[tuple[Any, ...]] = []

    def strategy(made: int, kind: str, err: BaseException, job: Any) -> int:
        calls.append((made, kind, str(err), job))
        return 1234

    err = RuntimeError("x")
    common = {"attempts": 5, "attempts_started": 1, "max_started_attempts": None, "error": err, "job": "J"}
    got = retry_delay(attempts_made=1, unrecoverable=False, backoff={"type": "mine"}, strategy=strategy, **common)
    assert got == 1234 and calls == [(2, "mine", "x", "J")]
    assert retry_delay(attempts_made=1, unrecoverable=False, backoff=None, strategy=None, **common) == 0
    assert retry_delay(attempts_made=4, unrecoverable=False, backoff=None, strategy=None, **common) is None
    assert retry_delay(attempts_made=0, unrecoverable=True, backoff=None, strategy=None, **common) is None
    assert retry_delay(attempts_made=0, unrecoverable=False, backoff={"type": "mine"},
                       strategy=lambda *a: -1, **common) is None
    common["max_started_attempts"] = 1
    assert retry_delay(attempts_made=0, unrecoverable=False, backoff=None, strategy=None, **common) is None


def test_custom_backoff_strategy_in_worker(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    put_job(raw, prefix, "q", "lin", state="wait", extra={
        "atm": 0, "ats": 0, "opts": json.dumps({"attempts": 2, "backoff": {"type": "linear"}})})
    seen: list[tuple[int, str]] = []

    def strategy(made: int, kind: str, err: BaseException, j: Job) -> int:
        seen.append((made, kind))
        return 50000

    def failing(j: Job) -> None:
        raise RuntimeError("nope")

    with make_worker(redis_url, prefix, failing, backoff_strategy=strategy):
        wait_for(lambda: raw.zcard(f"{prefix}:q:delayed") == 1)
    assert seen == [(1, "linear")]
    assert raw.hget(f"{prefix}:q:lin", "delay") == "50000"


def test_unrecoverable_error_fails_at_once(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 5, "backoff": 10})

    def fatal(j: Job) -> None:
        raise UnrecoverableError("give up")

    with make_worker(redis_url, prefix, fatal):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert fields["failedReason"] == "give up" and fields["atm"] == "1"
    assert not [e for e in events(raw, prefix) if e["event"] == "retries-exhausted"]


def test_deferred_failure_fails_without_running(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    put_job(raw, prefix, "q", "d1", state="wait", extra={"defa": "child bull:x:1 failed",
                                                      "opts": json.dumps({"attempts": 3})})
    ran: list[str] = []
    with make_worker(redis_url, prefix, lambda j: ran.append(j.id)):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    fields = raw.hgetall(f"{prefix}:q:d1")
    assert ran == []
    assert fields["failedReason"] == "child bull:x:1 failed" and "defa" not in fields


def test_max_started_attempts_stops_retries(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {}, {"attempts": 5})

    def failing(j: Job) -> None:
        raise RuntimeError("real reason")

    with make_worker(redis_url, prefix, failing, max_started_attempts=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert (fields["failedReason"], fields["atm"], fields["ats"]) == ("real reason", "1", "1")


@pytest.mark.parametrize(
    ("policy", "kept"),
    [(True, 0), (2, 2), ({"count": 3}, 3), (False, 5), (None, 5)],
)
def test_remove_on_complete_policies(queue: Queue, raw: Any, prefix: str, redis_url: str,
                                     policy: Any, kept: int) -> None:
    for i in range(5):
        queue.add("work", {"i": i})
    counter = {"n": 0}

    def proc(j: Job) -> int:
        counter["n"] += 1
        return 1

    with make_worker(redis_url, prefix, proc, remove_on_complete=policy):
        wait_for(lambda: counter["n"] == 5 and raw.llen(f"{prefix}:q:active") == 0)
        wait_for(lambda: sum(1 for e in events(raw, prefix) if e["event"] == "completed") == 5)
    assert raw.zcard(f"{prefix}:q:completed") == kept
    hashes = [k for k in raw.keys(f"{prefix}:q:*") if k.split(":")[-1].isdigit()]
    assert len(hashes) == kept
    if kept:
        newest = raw.zrange(f"{prefix}:q:completed", 0, -1)
        assert sorted(newest, key=int) == [str(i) for i in range(6 - kept, 6)]


def test_job_remove_on_fail_overrides_worker(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    a = queue.add("work", {}, {"removeOnFail": True})
    b = queue.add("work", {})

    def failing(j: Job) -> None:
        raise RuntimeError("x")

    with make_worker(redis_url, prefix, failing, remove_on_fail=False):
        wait_for(lambda: sum(1 for e in events(raw, prefix) if e["event"] == "failed") == 2)
    assert not raw.exists(f"{prefix}:q:{a.id}")
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == [b.id]


def test_remove_by_age(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    old = int(time.time() * 1000) - 3_600_000
    put_job(raw, prefix, "q", "old", state="completed")
    raw.zadd(f"{prefix}:q:completed", {"old": old})
    job = queue.add("work", {})
    with make_worker(redis_url, prefix, lambda j: 1, remove_on_complete={"age": 60}):
        wait_for(lambda: raw.zscore(f"{prefix}:q:completed", job.id) is not None)
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [job.id]
    assert not raw.exists(f"{prefix}:q:old")


def test_order_wait_before_prioritized_and_priorities(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    queue.add("p5", {}, {"priority": 5})
    queue.add("p1", {}, {"priority": 1})
    queue.add("plain", {})
    queue.add("p1b", {}, {"priority": 1})
    order: list[str] = []
    with make_worker(redis_url, prefix, lambda j: order.append(j.name)):
        wait_for(lambda: len(order) == 4)
    assert order == ["plain", "p1", "p1b", "p5"]
    assert not raw.exists(f"{prefix}:q:pc")


def test_delayed_job_is_promoted_when_due(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("later", {}, {"delay": 700})
    done: list[float] = []
    start = time.time()
    with make_worker(redis_url, prefix, lambda j: done.append(time.time()), drain_delay=5):
        wait_for(lambda: bool(done), timeout=5)
    assert done[0] - start >= 0.65
    assert done[0] - start < 2.5  # woken by the delay marker, not the 5 s drain delay
    assert raw.hget(f"{prefix}:q:{job.id}", "delay") == "0"
    assert {"event": "waiting", "jobId": job.id, "prev": "delayed"} in events(raw, prefix)


def test_paused_queue_is_not_fetched(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    raw.hset(f"{prefix}:q:meta", "paused", 1)
    job = queue.add("work", {})
    ran: list[str] = []
    with make_worker(redis_url, prefix, lambda j: ran.append(j.id), drain_delay=0.3):
        time.sleep(0.8)
        assert ran == []
        raw.hdel(f"{prefix}:q:meta", "paused")
        raw.zadd(f"{prefix}:q:marker", {"0": 0})
        wait_for(lambda: ran == [job.id])


def test_global_concurrency_respected(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    raw.hset(f"{prefix}:q:meta", "concurrency", 1)
    for i in range(6):
        queue.add("work", {"i": i})
    running = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def proc(j: Job) -> None:
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        time.sleep(0.05)
        with lock:
            running["now"] -= 1

    with make_worker(redis_url, prefix, proc, concurrency=4, drain_delay=0.2):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 6)
    assert running["peak"] == 1


def test_rate_limiter(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    for i in range(4):
        queue.add("work", {"i": i})
    stamps: list[float] = []
    with make_worker(redis_url, prefix, lambda j: stamps.append(time.time()), concurrency=2,
                     limiter={"max": 2, "duration": 500}):
        wait_for(lambda: len(stamps) == 4)
    assert stamps[3] - stamps[0] >= 0.4


def test_concurrency_runs_jobs_in_parallel(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    for i in range(8):
        queue.add("work", {"i": i})
    start = time.time()
    with make_worker(redis_url, prefix, lambda j: time.sleep(0.3), concurrency=8):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 8)
    assert time.time() - start < 2.0


def test_lock_is_renewed_while_processing(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {})
    ttls: list[int] = []

    def slow(j: Job) -> str:
        for _ in range(5):
            time.sleep(0.3)
            ttls.append(raw.pttl(f"{prefix}:q:{j.id}:lock"))
        return "done"

    with make_worker(redis_url, prefix, slow, lock_duration=600):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert all(t > 0 for t in ttls), ttls  # 1.5 s of work with a 0.6 s lock
    assert raw.hget(f"{prefix}:q:{job.id}", "returnvalue") == '"done"'


def test_stalled_job_moves_back_to_wait(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    put_job(raw, prefix, "q", "s1", state="active", extra={"opts": "{}"})
    raw.delete(f"{prefix}:q:s1:lock")  # its worker died
    worker = make_worker(redis_url, prefix, lambda j: None, stalled_interval=100, autorun=False)
    assert worker.check_stalled() == []  # first pass marks it
    assert raw.smembers(f"{prefix}:q:stalled") == {"s1"}
    time.sleep(0.15)
    assert worker.check_stalled() == ["s1"]
    assert raw.lrange(f"{prefix}:q:wait", -1, -1) == ["s1"]
    assert raw.hget(f"{prefix}:q:s1", "stc") == "1"
    assert events(raw, prefix)[-2:] == [
        {"event": "waiting", "jobId": "s1", "prev": "active"},
        {"event": "stalled", "jobId": "s1"},
    ]
    assert raw.pttl(f"{prefix}:q:stalled-check") > 0
    worker.close()


def test_job_stalled_too_often_fails_with_defa(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    put_job(raw, prefix, "q", "s2", state="active", extra={"opts": "{}", "stc": 1})
    raw.delete(f"{prefix}:q:s2:lock")
    raw.sadd(f"{prefix}:q:stalled", "s2")
    stalled: list[str] = []
    with make_worker(redis_url, prefix, lambda j: None, on_stalled=stalled.append):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    assert stalled == ["s2"]
    fields = raw.hgetall(f"{prefix}:q:s2")
    assert fields["failedReason"] == "job stalled more than allowable limit"
    assert fields["stc"] == "2" and "defa" not in fields


def test_flow_child_completion_releases_parent(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    parent_key = f"{prefix}:parents:p1"
    raw.hset(parent_key, mapping={"name": "parent", "data": "{}", "opts": "{}", "priority": 0,
                                  "delay": 0, "timestamp": 1})
    raw.zadd(f"{prefix}:parents:waiting-children", {"p1": 1})
    put_job(raw, prefix, "q", "c1", state="wait", parent_key=parent_key, extra={"opts": "{}"})
    put_job(raw, prefix, "q", "c2", state="wait", parent_key=parent_key, extra={"opts": "{}"})
    raw.sadd(f"{parent_key}:dependencies", f"{prefix}:q:c1", f"{prefix}:q:c2")
    with make_worker(redis_url, prefix, lambda j: {"child": j.id}):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 2)
    assert raw.scard(f"{parent_key}:dependencies") == 0
    assert raw.hgetall(f"{parent_key}:processed") == {
        f"{prefix}:q:c1": '{"child": "c1"}', f"{prefix}:q:c2": '{"child": "c2"}'}
    assert raw.lrange(f"{prefix}:parents:wait", 0, -1) == ["p1"]
    assert raw.zcard(f"{prefix}:parents:waiting-children") == 0
    assert events(raw, prefix, "parents")[-1] == {
        "event": "waiting", "jobId": "p1", "prev": "waiting-children"}


@pytest.mark.parametrize("flag", ["fpof", "cpof", "idof", "rdof", None])
def test_flow_child_failure_policies(queue: Queue, raw: Any, prefix: str, redis_url: str,
                                     flag: str | None) -> None:
    parent_key = f"{prefix}:parents:p1"
    raw.hset(parent_key, mapping={"name": "parent", "data": "{}", "opts": "{}", "priority": 0,
                                  "delay": 0, "timestamp": 1})
    raw.zadd(f"{prefix}:parents:waiting-children", {"p1": 1})
    put_job(raw, prefix, "q", "c1", state="wait", parent_key=parent_key, parent_flag=flag,
            extra={"opts": "{}"})
    raw.sadd(f"{parent_key}:dependencies", f"{prefix}:q:c1", f"{prefix}:q:other")

    def failing(j: Job) -> None:
        raise RuntimeError("child broke")

    with make_worker(redis_url, prefix, failing):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    child = f"{prefix}:q:c1"
    deps = raw.smembers(f"{parent_key}:dependencies")
    released = raw.lrange(f"{prefix}:parents:wait", 0, -1) == ["p1"]
    if flag is None:
        assert deps == {child, f"{prefix}:q:other"} and not released
    elif flag == "fpof":
        assert deps == {f"{prefix}:q:other"} and released
        assert raw.zrange(f"{parent_key}:unsuccessful", 0, -1) == [child]
        assert raw.hget(parent_key, "defa") == f"child {child} failed"
    elif flag == "cpof":
        assert released and raw.hgetall(f"{parent_key}:failed") == {child: "child broke"}
    elif flag == "idof":
        assert not released and raw.hgetall(f"{parent_key}:failed") == {child: "child broke"}
    else:
        assert not released and not raw.exists(f"{parent_key}:failed")
        assert deps == {f"{prefix}:q:other"}


def test_finish_replayed_with_same_token_applies_once(queue: Queue, raw: Any, prefix: str, connection: Any) -> None:
    put_job(raw, prefix, "q", "r1", state="active", extra={"opts": "{}"})
    raw.set(f"{prefix}:q:r1:lock", "tok")
    keys = queue.keys
    op = keys.op("fixed-token")
    call_keys = (keys.wait, keys.active, keys.prioritized, keys.events, keys.stalled, keys.limiter,
                 keys.delayed, keys.meta, keys.pc, keys.completed, keys.job("r1"), keys.marker, op)
    args = ("r1", int(time.time() * 1000), "completed", "7", keys.base, "tok", "", "", "", 0, "",
            "0", 30000, "", "", "", 60000)
    assert connection.run_script("finishJob", call_keys, args) == 0
    assert connection.run_script("finishJob", call_keys, args) == 0
    assert raw.hget(f"{prefix}:q:r1", "atm") == "2"  # put_job starts at 1: incremented once
    assert sum(1 for e in events(raw, prefix) if e["event"] == "completed") == 1


def test_finish_refused_on_lock_mismatch(queue: Queue, raw: Any, prefix: str, connection: Any) -> None:
    put_job(raw, prefix, "q", "m1", state="active", extra={"opts": "{}"})
    keys = queue.keys
    call_keys = (keys.wait, keys.active, keys.prioritized, keys.events, keys.stalled, keys.limiter,
                 keys.delayed, keys.meta, keys.pc, keys.completed, keys.job("m1"), keys.marker,
                 keys.op("t2"))
    args = ("m1", 1, "completed", "7", keys.base, "not-mine", "", "", "", 0, "", "0", 30000,
            "", "", "", 60000)
    before = snapshot(raw, prefix)
    assert connection.run_script("finishJob", call_keys, args) == -6
    assert snapshot(raw, prefix) == before


def test_close_waits_for_jobs_in_flight(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    for i in range(3):
        queue.add("work", {"i": i})
    started = threading.Event()

    def slow(j: Job) -> int:
        started.set()
        time.sleep(0.5)
        return 1

    worker = make_worker(redis_url, prefix, slow, concurrency=1).start()
    assert started.wait(5)
    t0 = time.time()
    assert worker.close(timeout=5) is True
    assert time.time() - t0 < 2
    assert raw.zcard(f"{prefix}:q:completed") == 1  # the one in flight, no new fetch
    assert raw.llen(f"{prefix}:q:wait") == 2 and raw.llen(f"{prefix}:q:active") == 0
    assert not worker.running


def test_close_interrupts_an_idle_block_quickly(redis_url: str, prefix: str) -> None:
    worker = make_worker(redis_url, prefix, lambda j: None, drain_delay=10).start()
    time.sleep(0.3)
    t0 = time.time()
    worker.close()
    assert time.time() - t0 < 2


def test_run_blocks_until_closed(redis_url: str, prefix: str) -> None:
    worker = make_worker(redis_url, prefix, lambda j: None)
    threading.Timer(0.3, worker.close).start()
    t0 = time.time()
    worker.run()
    assert 0.25 < time.time() - t0 < 5


def test_opts_dict_and_events(redis_url: str, prefix: str, queue: Queue, raw: Any) -> None:
    worker = Worker("q", lambda j: 1, {"concurrency": 3, "lockDuration": 5000, "prefix": prefix,
                                        "connection": redis_url, "drainDelay": 1})
    assert (worker.concurrency, worker.lock_duration) == (3, 5000)
    got: list[str] = []
    worker.on("completed", lambda j, r: got.append(j.id))
    job = queue.add("work", {})
    with worker:
        wait_for(lambda: got == [job.id])


@pytest.mark.parametrize(
    "kwargs",
    [{"concurrency": 0}, {"lock_duration": -1}, {"drain_delay": 0}, {"remove_on_complete": "x"},
     {"limiter": {"duration": 1}}, {"max_started_attempts": -1}],
)
def test_bad_settings_refused_before_redis(kwargs: dict[str, Any], raw: Any, prefix: str) -> None:
    with pytest.raises(InvalidArgument):
        Worker("q", lambda j: None, connection="redis://127.0.0.1:1", prefix=prefix, **kwargs)
    with pytest.raises(InvalidArgument):
        Worker("q", lambda j: None, {"bogusOption": 1})
    assert snapshot(raw, prefix) == {}


def test_processor_error_does_not_kill_worker(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    a = queue.add("work", {})
    b = queue.add("work", {})

    def proc(j: Job) -> Any:
        if j.id == a.id:
            return object()  # not JSON: the attempt fails
        return "fine"

    with make_worker(redis_url, prefix, proc):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1 and raw.zcard(f"{prefix}:q:failed") == 1)
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [b.id]
    assert "not JSON serializable" in raw.hget(f"{prefix}:q:{a.id}", "failedReason")


def test_progress_and_logs_inside_the_processor(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    job = queue.add("work", {})

    def proc(j: Job) -> str:
        j.update_progress({"pct": 50})
        j.log("half way")
        return "ok"

    with make_worker(redis_url, prefix, proc):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert json.loads(raw.hget(f"{prefix}:q:{job.id}", "progress")) == {"pct": 50}
    assert raw.lrange(f"{prefix}:q:{job.id}:logs", 0, -1) == ["half way"]
    progress = [e for e in events(raw, prefix) if e["event"] == "progress"]
    assert len(progress) == 1 and json.loads(progress[0]["data"]) == {"pct": 50}


def test_sigterm_closes_gracefully(redis_url: str, raw: Any, prefix: str) -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys, time
        from bullmq_sync import Queue, Worker
        url, prefix = sys.argv[1], sys.argv[2]
        def slow(job):
            print("STARTED", flush=True)
            time.sleep(1.0)
            return "finished"
        Worker("q", slow, connection=url, prefix=prefix, drain_delay=1).run(
            install_signal_handlers=True)
        print("EXITED", flush=True)
        """
    )
    with Queue("q", connection=redis_url, prefix=prefix) as q:
        job = q.add("work", {})
        q.add("work", {})
    child = subprocess.Popen([sys.executable, "-c", code, redis_url, prefix],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "STARTED"
    child.terminate()
    out, _ = child.communicate(timeout=15)
    assert "EXITED" in out and child.returncode == 0
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == [job.id]
    assert raw.llen(f"{prefix}:q:wait") == 1 and raw.llen(f"{prefix}:q:active") == 0


def test_processor_with_bullmqs_job_token_signature(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    """BullMQ's documented processor is ``process(job, job_token)``; it works without ``async``."""
    job = queue.add("work", {"n": 1})
    tokens: list[str] = []

    def process(job: Job, job_token: str) -> str:
        tokens.append(job_token)
        return "some value"

    with make_worker(redis_url, prefix, process):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert raw.hget(f"{prefix}:q:{job.id}", "returnvalue") == '"some value"'
    assert len(tokens) == 1 and tokens[0].count(":") >= 1
