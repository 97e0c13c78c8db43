"""Worker steps against a real Redis: manual delay, waiting-children, rate limits, pause.

Each test asserts the exact state BullMQ 6.7's scripts leave (moveToDelayed with skipAttempt,
moveToWaitingChildren, moveJobFromActiveToWait, the limiter key, metrics hashes/lists).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import events, wait_for

from bullmq_sync import (
    DelayedError,
    InvalidArgument,
    Job,
    JobHasFailedChildren,
    JobLockMismatch,
    JobPendingChildren,
    Queue,
    RateLimitError,
    WaitingChildrenError,
    WaitingError,
    Worker,
)


def make_worker(redis_url: str, prefix: str, processor: Callable[..., Any], **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 1)
    kw.setdefault("autorun", False)  # started by `with`: processors may use the name
    errors: list[BaseException] = []
    kw.setdefault("on_error", errors.append)
    worker = Worker(kw.pop("queue_name", "q"), processor, connection=redis_url, prefix=prefix, **kw)
    worker.errors = errors  # type: ignore[attr-defined]
    return worker


# -- 1. manual delay: job.move_to_delayed + DelayedError ------------------------------------


def test_step_job_moves_itself_to_delayed_then_completes(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    job = queue.add("steps", {"step": "initial"}, {"attempts": 3})
    seen: dict[str, Any] = {}
    failed: list[Any] = []

    def processor(job: Job, token: str) -> str:
        if job.data["step"] == "initial":
            job.update_data({"step": "second"})
            due = int(time.time() * 1000) + 400
            seen["due"] = due
            job.move_to_delayed(due, token)
            seen["state"] = raw.hgetall(f"{prefix}:q:{job.id}")
            seen["score"] = raw.zscore(f"{prefix}:q:delayed", job.id)
            seen["lock"] = raw.exists(f"{prefix}:q:{job.id}:lock")
            seen["active"] = raw.lrange(f"{prefix}:q:active", 0, -1)
            raise DelayedError()
        return "done"

    worker = make_worker(redis_url, prefix, processor, on_failed=lambda j, e: failed.append(e))
    with worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    state = seen["state"]
    assert "atm" not in state and state["ats"] == "1"  # skipAttempt: no attempt counted
    assert "failedReason" not in state and "stacktrace" not in state
    delay = int(state["delay"])
    assert 300 <= delay <= 400
    due = int(seen["score"]) // 4096
    assert abs(due - seen["due"]) <= 5
    assert seen["lock"] == 0 and job.id not in seen["active"]
    final = raw.hgetall(f"{prefix}:q:{job.id}")
    assert final["atm"] == "1" and final["ats"] == "2" and final["returnvalue"] == '"done"'
    assert failed == [] and worker.errors == []  # type: ignore[attr-defined]
    names = [e["event"] for e in events(raw, prefix) if e.get("jobId") == job.id]
    assert names == ["added", "waiting", "active", "delayed", "waiting", "active", "completed"]
    delayed = next(e for e in events(raw, prefix) if e["event"] == "delayed")
    assert delayed == {"event": "delayed", "jobId": job.id, "delay": str(due)}


def test_move_to_delayed_with_a_wrong_token_is_refused(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    queue.add("steps", {})
    outcome: list[BaseException] = []

    def processor(job: Job, token: str) -> None:
        try:
            job.move_to_delayed(int(time.time() * 1000) + 1000, "not-the-token")
        except JobLockMismatch as exc:
            outcome.append(exc)

    with make_worker(redis_url, prefix, processor):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert len(outcome) == 1 and outcome[0].code == -6  # type: ignore[attr-defined]
    assert raw.zcard(f"{prefix}:q:delayed") == 0


def test_move_to_delayed_bad_timestamp_sends_nothing(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.add("steps", {})
    before = raw.hgetall(f"{prefix}:q:{job.id}")
    with pytest.raises(InvalidArgument):
        job.move_to_delayed("soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        job.move_to_delayed(time.time() * 1000, token="")
    assert raw.hgetall(f"{prefix}:q:{job.id}") == before
    assert raw.zcard(f"{prefix}:q:delayed") == 0


# -- 1b. waiting-children: job.move_to_waiting_children + WaitingChildrenError -------------


def test_parent_waits_for_the_children_it_adds(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    parent = queue.add("parent", {"step": "spawn"})
    children = Queue("kids", connection=queue.connection, prefix=prefix)
    seen: dict[str, Any] = {}

    def processor(job: Job, token: str) -> Any:
        step = job.data["step"]
        if step == "spawn":
            for n in range(2):
                children.add("kid", {"n": n}, {"parent": {"id": job.id, "queue": f"{prefix}:q"}})
            job.update_data({"step": "wait"})
            moved = job.move_to_waiting_children(token)
            seen["moved"] = moved
            seen["score"] = raw.zscore(f"{prefix}:q:waiting-children", job.id)
            seen["lock"] = raw.exists(f"{prefix}:q:{job.id}:lock")
            raise WaitingChildrenError()
        if step == "wait":
            # released by the children: nothing pending any more
            seen["again"] = job.move_to_waiting_children(token)
            return sorted(v["n"] for v in job.get_children_values().values())
        raise AssertionError(step)

    with make_worker(redis_url, prefix, processor) as worker:
        wait_for(lambda: raw.exists(f"{prefix}:q:waiting-children") == 1)
        assert raw.llen(f"{prefix}:q:active") == 0
        with make_worker(redis_url, prefix, lambda j: {"n": j.data["n"]}, queue_name="kids"):
            wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
        assert worker.errors == []  # type: ignore[attr-defined]
    assert seen["moved"] is True and seen["lock"] == 0 and seen["score"] is not None
    assert seen["again"] is False
    fields = raw.hgetall(f"{prefix}:q:{parent.id}")
    assert fields["returnvalue"] == "[0, 1]" and fields["atm"] == "1" and fields["ats"] == "2"
    parent_events = [e for e in events(raw, prefix) if e.get("jobId") == parent.id]
    assert {"event": "waiting-children", "jobId": parent.id, "prev": "active"} in parent_events


def test_waiting_children_without_children_returns_false_and_keeps_the_job(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    job = queue.add("lonely", {})
    seen: dict[str, Any] = {}

    def processor(job: Job, token: str) -> str:
        seen["moved"] = job.move_to_waiting_children(token)
        seen["lock"] = raw.get(f"{prefix}:q:{job.id}:lock")
        seen["active"] = raw.lrange(f"{prefix}:q:active", 0, -1)
        seen["named"] = job.move_to_waiting_children(token, {"id": "nope", "queue": f"{prefix}:x"})
        return "ok"

    with make_worker(redis_url, prefix, processor):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert seen["moved"] is False and seen["named"] is False
    assert seen["lock"] is not None and seen["active"] == [job.id]
    assert raw.zcard(f"{prefix}:q:waiting-children") == 0


def test_waiting_children_with_a_failed_child_raises_minus_9(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    queue.add("parent", {})
    raised: list[BaseException] = []

    def processor(job: Job, token: str) -> None:
        raw.zadd(f"{prefix}:q:{job.id}:unsuccessful", {f"{prefix}:kids:1": 1})
        raw.sadd(f"{prefix}:q:{job.id}:dependencies", f"{prefix}:kids:2")
        try:
            job.move_to_waiting_children(token)
        except JobHasFailedChildren as exc:
            raised.append(exc)
        raw.delete(f"{prefix}:q:{job.id}:unsuccessful", f"{prefix}:q:{job.id}:dependencies")

    with make_worker(redis_url, prefix, processor):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert len(raised) == 1 and raised[0].code == -9  # type: ignore[attr-defined]
    assert raised[0].command == "moveToWaitingChildren"  # type: ignore[attr-defined]


def test_waiting_children_is_exactly_once(queue: Queue, raw: Any, prefix: str) -> None:
    """A call retried with the same outcome key (a lost reply) answers the first outcome."""
    job = queue.add("parent", {})
    raw.rpush(f"{prefix}:q:active", job.id)
    raw.lrem(f"{prefix}:q:wait", 0, job.id)
    raw.sadd(f"{prefix}:q:{job.id}:dependencies", f"{prefix}:kids:1")
    queue.next_token = lambda: "fixed-token"  # type: ignore[method-assign]
    assert job.move_to_waiting_children() is True
    count = len(events(raw, prefix))
    assert job.move_to_waiting_children() is True  # replayed, not -3
    assert len(events(raw, prefix)) == count
    assert raw.zcard(f"{prefix}:q:waiting-children") == 1


# -- 2. manual rate limit: worker.rate_limit + RateLimitError ------------------------------


def test_rate_limit_error_puts_the_job_back_without_an_attempt(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    job = queue.add("api", {}, {"attempts": 1})
    calls: list[float] = []
    failed: list[Any] = []
    seen: dict[str, Any] = {}

    def processor(j: Job) -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            worker.rate_limit(600)
            seen["limiter"] = raw.get(f"{prefix}:q:limiter")
            seen["ttl"] = queue.get_rate_limit_ttl()
            raise Worker.RateLimitError()
        return "ok"

    worker = make_worker(redis_url, prefix, processor, on_failed=lambda j, e: failed.append(e))
    with worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert seen["limiter"] == "9007199254740991"
    assert 0 < seen["ttl"] <= 600
    assert calls[1] - calls[0] >= 0.45  # fetching waited for the limiter's TTL
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert fields["atm"] == "1" and fields["ats"] == "2" and "failedReason" not in fields
    assert failed == [] and worker.errors == []  # type: ignore[attr-defined]
    names = [e["event"] for e in events(raw, prefix) if e.get("jobId") == job.id]
    assert names == ["added", "waiting", "active", "waiting", "active", "completed"]
    back = [e for e in events(raw, prefix) if e["event"] == "waiting" and e.get("prev")]
    assert back == [{"event": "waiting", "jobId": job.id, "prev": "active"}]


def test_move_to_wait_goes_to_the_front_of_the_line(queue: Queue, raw: Any, prefix: str) -> None:
    first = queue.add("a", {})
    queue.add("b", {})
    urgent = queue.add("p", {}, {"priority": 5})
    queue.add("p2", {}, {"priority": 5})
    for job in (first, urgent):  # as if a worker had taken them (token "0": no lock)
        raw.lrem(f"{prefix}:q:wait", 0, job.id)
        raw.zrem(f"{prefix}:q:prioritized", job.id)
        raw.rpush(f"{prefix}:q:active", job.id)
    raw.set(f"{prefix}:q:limiter", 5, px=5000)
    assert first.move_to_wait() > 4000
    assert raw.lrange(f"{prefix}:q:wait", -1, -1) == [first.id]  # RPUSH: taken next
    assert urgent.move_to_wait() > 4000
    assert raw.zscore(f"{prefix}:q:prioritized", urgent.id) == 5 * 2**32
    assert raw.llen(f"{prefix}:q:active") == 0
    assert raw.hget(f"{prefix}:q:{first.id}", "atm") is None


def test_move_to_wait_is_exactly_once(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.add("a", {})
    raw.lrem(f"{prefix}:q:wait", 0, job.id)
    raw.rpush(f"{prefix}:q:active", job.id)
    queue.next_token = lambda: "same"  # type: ignore[method-assign]
    assert job.move_to_wait() == 0
    count = len(events(raw, prefix))
    assert job.move_to_wait() == 0
    assert len(events(raw, prefix)) == count and raw.lrange(f"{prefix}:q:wait", 0, -1) == [job.id]


def test_waiting_error_leaves_the_job_where_the_processor_put_it(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    job = queue.add("a", {})
    runs: list[int] = []

    def processor(j: Job, token: str) -> None:
        runs.append(1)
        if len(runs) == 1:
            j.move_to_wait(token)
            raise WaitingError()

    with make_worker(redis_url, prefix, processor):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert raw.hget(f"{prefix}:q:{job.id}", "atm") == "1" and len(runs) == 2


def test_get_rate_limit_ttl_follows_bullmq(queue: Queue, raw: Any, prefix: str) -> None:
    assert queue.get_rate_limit_ttl() == -2  # no limiter key: PTTL
    raw.set(f"{prefix}:q:limiter", 3, px=5000)
    assert 4000 < queue.get_rate_limit_ttl() <= 5000  # no max anywhere: raw PTTL
    assert queue.get_rate_limit_ttl(4) == 0  # 3 used < 4
    assert 4000 < queue.get_rate_limit_ttl(3) <= 5000
    queue.set_global_rate_limit(10, 1000)
    assert queue.get_rate_limit_ttl() == 0  # meta max 10 > 3 used
    queue.rate_limit(2000)
    assert raw.get(f"{prefix}:q:limiter") == "9007199254740991"
    assert 1500 < queue.get_rate_limit_ttl() <= 2000
    with pytest.raises(InvalidArgument):
        queue.rate_limit(0)
    with pytest.raises(InvalidArgument):
        queue.get_rate_limit_ttl(-1)


# -- 3. pause / resume ---------------------------------------------------------------------


def test_pause_waits_for_the_job_in_flight_and_resume_fetches_again(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    release = threading.Event()
    started = threading.Event()
    queue.add("slow", {})
    signals: list[str] = []

    def processor(j: Job) -> str:
        started.set()
        release.wait(5)
        return j.name

    worker = make_worker(redis_url, prefix, processor, concurrency=2)
    worker.on("paused", lambda: signals.append("paused"))
    worker.on("resumed", lambda: signals.append("resumed"))
    with worker:
        assert started.wait(5)
        pauser = threading.Thread(target=worker.pause)
        pauser.start()
        time.sleep(0.3)
        assert pauser.is_alive() and worker.is_paused()  # waiting for the job in flight
        release.set()
        pauser.join(5)
        assert not pauser.is_alive()
        assert raw.zcard(f"{prefix}:q:completed") == 1
        later = queue.add("later", {})
        time.sleep(0.5)
        # a paused worker fetches nothing
        assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [later.id]
        worker.resume()
        assert not worker.is_paused()
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 2)
    assert signals == ["paused", "resumed"]


def test_pause_without_waiting_returns_at_once(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    release = threading.Event()
    started = threading.Event()
    queue.add("slow", {})

    def processor(j: Job) -> None:
        started.set()
        release.wait(5)

    with make_worker(redis_url, prefix, processor) as worker:
        assert started.wait(5)
        began = time.monotonic()
        worker.pause(do_not_wait_active=True)
        assert time.monotonic() - began < 0.5
        assert raw.llen(f"{prefix}:q:active") == 1
        release.set()
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)


def test_error_classes_match_bullmq_messages() -> None:
    assert str(DelayedError()) == "bullmq:movedToDelayed"
    assert str(WaitingChildrenError()) == "bullmq:movedToWaitingChildren"
    assert str(WaitingError()) == "bullmq:movedToWait"
    assert str(RateLimitError()) == "bullmq:rateLimitExceeded"
    assert Worker.RateLimitError is RateLimitError


# -- 4. metrics ----------------------------------------------------------------------------


def test_metrics_count_finished_jobs_per_minute(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    three_minutes_ago = int(time.time() * 1000) - 180_000
    raw.hset(f"{prefix}:q:metrics:completed", mapping={"count": 2, "prevTS": three_minutes_ago,
                                                       "prevCount": 0})
    ok = queue.add("ok", {})
    bad = queue.add("bad", {"fail": True})

    def processor(j: Job) -> None:
        if j.data.get("fail"):
            raise ValueError("no")

    with make_worker(redis_url, prefix, processor, metrics={"maxDataPoints": 2}):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") + raw.zcard(f"{prefix}:q:completed") == 2)
    completed = raw.hgetall(f"{prefix}:q:metrics:completed")
    assert completed["count"] == "3" and completed["prevCount"] == "2"
    assert int(completed["prevTS"]) >= int(raw.hget(f"{prefix}:q:{ok.id}", "finishedOn"))
    assert raw.lrange(f"{prefix}:q:metrics:completed:data", 0, -1) == ["0", "2"]  # capped at 2
    failed = raw.hgetall(f"{prefix}:q:metrics:failed")
    assert failed["count"] == "1" and failed["prevCount"] == "0"
    assert failed["prevTS"] == raw.hget(f"{prefix}:q:{bad.id}", "finishedOn")
    assert not raw.exists(f"{prefix}:q:metrics:failed:data")
    assert queue.get_metrics("completed") == {
        "meta": {"count": 3, "prevTS": int(completed["prevTS"]), "prevCount": 2},
        "data": [0, 2],
        "count": 2,
    }
    assert queue.get_metrics("completed", 1, 1)["data"] == [2]
    assert queue.get_metrics("failed")["data"] == []
    with pytest.raises(InvalidArgument):
        queue.get_metrics("waiting")


def test_no_metrics_without_the_option(queue: Queue, raw: Any, prefix: str, redis_url: str) -> None:
    queue.add("ok", {})
    with make_worker(redis_url, prefix, lambda j: None):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert raw.keys(f"{prefix}:q:metrics*") == []
    with pytest.raises(InvalidArgument):
        Worker("q", lambda j: None, connection=redis_url, prefix=prefix,
               metrics={"maxDataPoints": 0})
    with pytest.raises(InvalidArgument):
        Worker("q", lambda j: None, {"metrics": {"points": 3}}, connection=redis_url, prefix=prefix)


# -- the README example (README, "Process step jobs"), run as written ---------------


def test_readme_process_step_jobs_example(raw: Any, prefix: str, redis_url: str) -> None:
    url = redis_url
    # ---- README example begins ----
    orders = Queue("orders", connection=url, prefix=prefix)
    lines = Queue("order-lines", connection=url, prefix=prefix)

    def process_order(job: Job, token: str) -> Any:
        step = job.data["step"]
        if step == "initial":  # wait a little before the real work
            job.update_data({**job.data, "step": "split"})
            job.move_to_delayed(int(time.time() * 1000) + 200, token)
            raise DelayedError()
        if step == "split":  # one child job per line, then wait for them
            for sku in job.data["skus"]:
                parent = {"id": job.id, "queue": job.queue_qualified_name}
                lines.add("line", {"sku": sku}, {"parent": parent})
            job.update_data({**job.data, "step": "total"})
            if job.move_to_waiting_children(token):
                raise WaitingChildrenError()
        return sum(job.get_children_values().values())

    def process_line(job: Job) -> int:
        return len(job.data["sku"])

    order = orders.add("order", {"step": "initial", "skus": ["ab", "cde"]})
    with Worker("orders", process_order, connection=url, prefix=prefix, drain_delay=1), \
            Worker("order-lines", process_line, connection=url, prefix=prefix, drain_delay=1):
        while orders.get_job_state(order.id) != "completed":
            time.sleep(0.05)
    print(orders.get_job(order.id).return_value)  # 5
    # ---- README example ends ----
    done = orders.get_job(order.id)
    assert done is not None and done.return_value == 5 and done.attempts_made == 1
    orders.close()
    lines.close()


def test_move_to_delayed_is_exactly_once(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.add("a", {})
    raw.lrem(f"{prefix}:q:wait", 0, job.id)
    raw.rpush(f"{prefix}:q:active", job.id)
    queue.next_token = lambda: "once"  # type: ignore[method-assign]
    due = int(time.time() * 1000) + 60_000
    job.move_to_delayed(due)
    score = raw.zscore(f"{prefix}:q:delayed", job.id)
    count = len(events(raw, prefix))
    job.move_to_delayed(due)  # replayed: not -3, nothing written twice
    assert len(events(raw, prefix)) == count
    assert raw.zscore(f"{prefix}:q:delayed", job.id) == score
    assert raw.hget(f"{prefix}:q:{job.id}", "atm") is None


def test_a_long_rate_limit_is_looked_at_again_after_the_cap(queue, raw, prefix, redis_url):
    """BullMQ's maximumRateLimitDelay: a worker never sleeps a whole long limit blindly."""
    queue.rate_limit(60_000)
    job = queue.add("work", {})
    done = []
    worker = Worker("q", lambda j: done.append(j.id), {"maximumRateLimitDelay": 300},
                    connection=redis_url, prefix=prefix, drain_delay=1,
                    limiter={"max": 1, "duration": 60_000})
    try:
        time.sleep(0.2)
        assert done == []  # still limited
        raw.delete(f"{prefix}:q:limiter")  # the limit is lifted early (e.g. by an operator)
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done == [job.id]
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("pending", "failed", "expected"),
    [(True, False, JobPendingChildren), (False, True, JobHasFailedChildren),
     (True, True, JobPendingChildren)],
)
def test_completing_a_parent_with_open_children_is_refused_and_changes_nothing(
    queue: Queue, raw: Any, prefix: str, redis_url: str, pending: bool, failed: bool,
    expected: type[Exception],
) -> None:
    """finishJob checks both child sets with one EXISTS: pending children answer -4 before
    failed ones answer -9 (as BullMQ's moveToFinished), and the refused job stays active and
    locked with its hash as it was."""
    queue.add("parent", {})
    worker = Worker("q", None, connection=redis_url, prefix=prefix, drain_delay=1)
    try:
        job = worker.get_next_job("tok-1")
        assert job is not None
        base = f"{prefix}:q:{job.id}"
        if pending:
            raw.sadd(f"{base}:dependencies", f"{prefix}:kids:1")
        if failed:
            raw.zadd(f"{base}:unsuccessful", {f"{prefix}:kids:2": 1})
        before = (raw.hgetall(base), raw.lrange(f"{prefix}:q:active", 0, -1),
                  raw.get(f"{base}:lock"), raw.xlen(f"{prefix}:q:events"))
        with pytest.raises(expected):
            job.move_to_completed("done", "tok-1")
        after = (raw.hgetall(base), raw.lrange(f"{prefix}:q:active", 0, -1),
                 raw.get(f"{base}:lock"), raw.xlen(f"{prefix}:q:events"))
        assert after == before and after[2] == "tok-1"
        assert raw.zcard(f"{prefix}:q:completed") == 0
    finally:
        worker.close()


def test_finishing_jobs_keeps_the_event_stream_near_its_cap(
    raw: Any, prefix: str, redis_url: str
) -> None:
    """The completed event is added with MAXLEN ~ opts.maxLenEvents (BullMQ trims there too):
    300 jobs write about 900 events, the stream keeps about the cap (Redis trims whole nodes of
    up to 100 entries, so "about" means within one node)."""
    with Queue("q", {"streams": {"events": {"maxLen": 10}}}, prefix=prefix,
               connection=redis_url) as queue:
        queue.add_bulk([{"name": "n", "data": {"i": i}} for i in range(300)])
        with make_worker(redis_url, prefix, lambda job: None, autorun=True, concurrency=4):
            wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 300)
    assert raw.xlen(f"{prefix}:q:events") <= 10 + 100 + 2
