"""Lost replies with short-lived or absent outcome keys: never applied twice, never a false error."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from helpers import events, outcome_keys, outcome_of, outcome_pttl, wait_for
from jobfactory import put_job
from proxy import ReplyDroppingProxy

from bullmq_sync import Connection, Queue, Worker
from bullmq_sync.job import OUTCOME_TTL_MS

pytestmark = pytest.mark.faults

TOKEN = "w1:7"


def small_budget(url: str) -> Connection:
    """A connection whose retries reach only a few seconds (so its outcome keys are short)."""
    return Connection(url, retry_budget=2.0, socket_timeout=1.0, socket_connect_timeout=1.0,
                      pool_timeout=1.0)


def finish_call(queue: Queue, job_id: str, target: str, value: str, *, keep: str = "",
                fetch_next: bool = False, token: str = TOKEN) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """KEYS/ARGV of lua/finishJob.lua as the worker sends them (a fresh call token)."""
    keys = queue.keys
    return (
        (keys.wait, keys.active, keys.prioritized, keys.events, keys.stalled, keys.limiter,
         keys.delayed, keys.meta, keys.pc, keys.state(target), keys.job(job_id), keys.marker,
         keys.op(queue.next_token())),
        (job_id, int(time.time() * 1000), target, value, keys.base, token, keep, "", "", 1,
         '["trace"]' if target == "failed" else "", "1" if fetch_next else "0", 30000, "", "",
         "w1", OUTCOME_TTL_MS),
    )


def active_job(raw: Any, prefix: str, job_id: str, token: str = TOKEN) -> None:
    put_job(raw, prefix, "q", job_id, state="active", extra={"opts": "{}", "atm": "0"})
    raw.set(f"{prefix}:q:{job_id}:lock", token, px=30000)


def lost_reply(proxy: ReplyDroppingProxy, queue: Queue, call: tuple[Any, Any]) -> Any:
    queue.connection.execute("PING")  # a warm pool with the scripts loaded
    proxy.drop_next_reply()
    reply = queue.connection.run_script("finishJob", *call)
    assert proxy.dropped == 1
    return reply


@pytest.fixture
def setup(local_redis: Any, prefix: str) -> Any:
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    proxy = ReplyDroppingProxy(local_redis.port)
    queue = Queue("q", connection=small_budget(proxy.url), prefix=prefix)
    yield raw, proxy, queue
    queue.close()
    queue.connection.close()
    proxy.close()


def test_add_retried_inside_the_budget_replays_its_key(setup: Any, prefix: str) -> None:
    raw, proxy, queue = setup
    queue.connection.execute("PING")
    proxy.drop_next_reply()
    job = queue.add("once", {"n": 1})
    assert proxy.dropped == 1
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [job.id] == ["1"]
    assert raw.get(f"{prefix}:q:id") == "1"
    [key] = outcome_keys(raw, prefix)
    assert outcome_of(raw, key) == "1"
    assert 0 < outcome_pttl(raw, key) <= queue.connection.outcome_ttl_ms <= 20000


@pytest.mark.parametrize("how", ["custom id", "bulk"])
def test_other_adds_replay_their_compact_keys(setup: Any, prefix: str, log_events: Any, how: str) -> None:
    raw, proxy, queue = setup
    queue.connection.execute("PING")
    proxy.drop_next_reply()
    if how == "custom id":
        jobs = [queue.add("once", {}, {"jobId": "[odd"})]
        stored = "=[odd"
    else:
        jobs = queue.add_bulk([{"name": "a", "data": {}}, {"name": "b", "data": {}}])
        stored = '[["1","2"],{},{},{}]'
    assert proxy.dropped == 1
    assert [job.id for job in jobs] == (["[odd"] if how == "custom id" else ["1", "2"])
    assert sorted(raw.lrange(f"{prefix}:q:wait", 0, -1)) == sorted(job.id for job in jobs)
    assert not any(e["event"] == "duplicated" for e in events(raw, prefix))
    [key] = outcome_keys(raw, prefix)
    assert outcome_of(raw, key).replace(" ", "") in (stored, stored.replace("{}", "[]"))


def test_completed_under_the_lock_is_proven_by_the_job_after_a_lost_reply(setup: Any, prefix: str) -> None:
    raw, proxy, queue = setup
    active_job(raw, prefix, "a")
    call = finish_call(queue, "a", "completed", '{"ok":1}')
    assert lost_reply(proxy, queue, call) == 0  # the truth, not -2 (lock gone)
    fields = raw.hgetall(f"{prefix}:q:a")
    assert fields["atm"] == "1" and fields["returnvalue"] == '{"ok":1}'
    assert raw.zscore(f"{prefix}:q:completed", "a") == call[1][1]
    assert [e["event"] for e in events(raw, prefix)].count("completed") == 1
    assert outcome_keys(raw, prefix) == []


def test_failed_under_the_lock_is_proven_by_the_job_after_a_lost_reply(setup: Any, prefix: str) -> None:
    raw, proxy, queue = setup
    active_job(raw, prefix, "f")
    call = finish_call(queue, "f", "failed", "broke")
    assert lost_reply(proxy, queue, call) == 0
    assert raw.hget(f"{prefix}:q:f", "atm") == "1"
    kinds = [e["event"] for e in events(raw, prefix)]
    assert kinds.count("failed") == 1 and kinds.count("retries-exhausted") == 1
    assert outcome_keys(raw, prefix) == []


def test_finish_and_fetch_hands_back_the_same_next_job_after_a_lost_reply(setup: Any, prefix: str) -> None:
    raw, proxy, queue = setup
    active_job(raw, prefix, "a")
    put_job(raw, prefix, "q", "b", state="wait", extra={"opts": "{}", "ats": "0", "atm": "0"})
    put_job(raw, prefix, "q", "c", state="wait", extra={"opts": "{}", "ats": "0", "atm": "0"})
    call = finish_call(queue, "a", "completed", "1", fetch_next=True)
    reply = lost_reply(proxy, queue, call)
    assert reply[1] == "b" and reply[4] == 1  # the job the first run took, as a repeat
    assert raw.get(f"{prefix}:q:b:lock") == TOKEN
    assert raw.hget(f"{prefix}:q:b", "ats") == "1"
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["c"]  # no second job taken
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == ["b"]
    assert [e["jobId"] for e in events(raw, prefix) if e["event"] == "active"] == ["b"]
    assert outcome_keys(raw, prefix) == []


@pytest.mark.parametrize(("next_id", "stored"), [("n", "j:n"), ("12", "12"), ("0", "j:0")])
def test_removed_on_completion_replays_its_short_key_after_a_lost_reply(
    setup: Any, prefix: str, next_id: str, stored: str
) -> None:
    raw, proxy, queue = setup
    active_job(raw, prefix, "r")
    put_job(raw, prefix, "q", next_id, state="wait", extra={"opts": "{}", "ats": "0", "atm": "0"})
    call = finish_call(queue, "r", "completed", "1", keep="0", fetch_next=True)
    reply = lost_reply(proxy, queue, call)
    assert reply[1] == next_id and reply[4] == 1
    assert not raw.exists(f"{prefix}:q:r")
    assert [e["event"] for e in events(raw, prefix)].count("completed") == 1
    [key] = outcome_keys(raw, prefix)
    assert outcome_of(raw, key) == stored and 0 < outcome_pttl(raw, key) <= queue.connection.outcome_ttl_ms


def test_a_refused_finish_still_reports_the_refusal_after_a_lost_reply(setup: Any, prefix: str) -> None:
    raw, proxy, queue = setup
    active_job(raw, prefix, "m", token="someone-else")
    call = finish_call(queue, "m", "completed", "1")
    assert lost_reply(proxy, queue, call) == -6
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == ["m"]
    assert raw.hget(f"{prefix}:q:m", "atm") == "0"


def test_a_job_finished_by_someone_else_is_not_mistaken_for_ours(setup: Any, prefix: str) -> None:
    """Another worker's finish (other time, other value) proves nothing about this call."""
    raw, proxy, queue = setup
    active_job(raw, prefix, "o")
    theirs = finish_call(queue, "o", "completed", '"theirs"')
    assert queue.connection.run_script("finishJob", *theirs) == 0
    ours = finish_call(queue, "o", "completed", '"ours"')
    assert queue.connection.run_script("finishJob", *ours) == -2
    assert raw.hget(f"{prefix}:q:o", "returnvalue") == '"theirs"'


@pytest.mark.parametrize("remove_on_complete", [None, True])
def test_worker_whose_finish_reply_is_lost_reports_one_clean_completion(
    local_redis: Any, prefix: str, remove_on_complete: Any
) -> None:
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    proxy = ReplyDroppingProxy(local_redis.port)
    errors: list[BaseException] = []
    completed: list[str] = []
    with Queue("q", connection=local_redis.url, prefix=prefix) as queue:
        job = queue.add("once", {})

    def processor(j: Any) -> str:
        proxy.drop_next_reply()  # the next reply the server sends is the finish's
        return "done"

    with Worker("q", processor, connection=small_budget(proxy.url), prefix=prefix, drain_delay=1,
                stalled_interval=600000, remove_on_complete=remove_on_complete,
                on_error=errors.append, on_completed=lambda j, r: completed.append(j.id)):
        wait_for(lambda: completed)
    assert proxy.dropped == 1
    assert errors == [] and completed == [job.id]
    assert [e["event"] for e in events(raw, prefix)].count("completed") == 1
    if remove_on_complete:
        assert not raw.exists(f"{prefix}:q:{job.id}")
    else:
        assert raw.hget(f"{prefix}:q:{job.id}", "atm") == "1"
        assert raw.zcard(f"{prefix}:q:completed") == 1
    proxy.close()


def test_a_repeat_delayed_past_the_send_window_is_refused_not_sent(local_redis: Any, prefix: str) -> None:
    """A retry stuck in the pool until its outcome may have expired is refused (ambiguous)."""
    from bullmq_sync import RedisUnavailable
    from bullmq_sync.connection import send_window

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    proxy = ReplyDroppingProxy(local_redis.port)
    connection = Connection(proxy.url, retry_budget=0.2, socket_timeout=0.3)
    window = send_window(retry_budget=0.2, socket_timeout=0.3)
    checkouts = [0]
    take = connection.pool.get_connection

    def slow_second_checkout(*args: Any, **kwargs: Any) -> Any:
        checkouts[0] += 1
        if checkouts[0] == 2:  # 1: the first send, 2: its repeat
            time.sleep(window + 0.2)
        return take(*args, **kwargs)

    with Queue("q", connection=connection, prefix=prefix) as queue:
        connection.execute("PING")
        connection.pool.get_connection = slow_second_checkout  # type: ignore[method-assign]
        proxy.drop_next_reply()
        with pytest.raises(RedisUnavailable) as refused:
            queue.add("once", {})
    assert refused.value.ambiguous is True and "could no longer be confirmed" in str(refused.value)
    assert checkouts[0] == 2 and proxy.dropped == 1
    assert raw.llen(f"{prefix}:q:wait") == 1  # the first send ran; the late repeat was not sent
    connection.close()
    proxy.close()
