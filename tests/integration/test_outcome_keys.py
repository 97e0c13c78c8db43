"""Outcome keys: as long-lived as the caller's retries can reach, and none where the job proves it."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from helpers import outcome_keys, outcome_of, outcome_pttl, wait_for

from bullmq_sync import Connection, Job, Queue, Worker
from bullmq_sync.connection import (
    LONGEST_OUTCOME_TTL_MS,
    OUTCOME_TTL_MS,
    outcome_ttl_ms,
    send_window,
)


def run_worker(connection: Any, prefix: str, count: int, **kw: Any) -> None:
    done: list[str] = []
    kw.setdefault("on_error", lambda e: print("WORKER ERROR", repr(e)))
    with Worker("q", lambda j: done.append(j.id) or "ok", connection=connection, prefix=prefix,
                drain_delay=1, **kw):
        wait_for(lambda: len(done) >= count)


def test_ttl_is_the_reach_of_the_retry_policy_plus_a_margin() -> None:
    defaults = Connection("redis://localhost:1")
    # send window: socket 10 + first pause 0.02 + budget 10 + backoff cap 1; + socket 10 to run
    assert send_window(retry_budget=10.0, socket_timeout=10.0) == pytest.approx(21.02)
    assert defaults.outcome_ttl_ms == round(31.02 * 1.25 * 1000)
    small = Connection("redis://localhost:1", retry_budget=0.5, socket_timeout=0.5)
    assert small.outcome_ttl_ms == round((0.5 * 3 + 1.02 + 2) * 1000)  # the 2 s margin floor
    assert Connection("redis://localhost:1", socket_timeout=None).outcome_ttl_ms == LONGEST_OUTCOME_TTL_MS
    longer = Connection("redis://localhost:1")
    longer.retry_budget = 60.0  # changed after creation: the TTL follows
    assert longer.outcome_ttl_ms == round((31.02 + 50) * 1.25 * 1000)


def test_a_borrowed_pool_is_judged_by_its_own_socket_timeout() -> None:
    pool = redis.BlockingConnectionPool(port=1, socket_timeout=2, timeout=3)
    expected = outcome_ttl_ms(retry_budget=10.0, socket_timeout=2)
    assert Connection(pool).outcome_ttl_ms == expected == round((2 + 1.02 + 10 + 2) * 1.25 * 1000)
    assert Connection(redis.Redis(port=1, socket_timeout=None)).outcome_ttl_ms == LONGEST_OUTCOME_TTL_MS


def test_the_placeholder_cannot_reach_redis_unfilled() -> None:
    with pytest.raises(TypeError):
        str(OUTCOME_TTL_MS)


def test_every_stored_outcome_key_expires_within_the_connections_ttl(prefix: str, raw: Any, redis_url: str) -> None:
    """Each kind of call that keeps an outcome key: it exists, with a TTL, never above ours."""
    connection = Connection(redis_url, retry_budget=3.0)
    ttl = connection.outcome_ttl_ms
    assert ttl < LONGEST_OUTCOME_TTL_MS
    with Queue("q", connection=connection, prefix=prefix) as queue:
        first = queue.add("a", {})
        queue.add_bulk([{"name": "b", "data": {}}, {"name": "c", "data": {}}])
        first.update_progress(50)
        first.log("row")
        first.update_data({"x": 1})
        run_worker(connection, prefix, 3, remove_on_complete={"count": 10})
        Job.from_id(queue, first.id).retry("completed")
        queue.clean(0, 10, "completed")
        keys = outcome_keys(raw, prefix)
        assert len(keys) >= 10  # 2 adds, 3 updates, 3 finishes (may be pruned), retry, clean
        for key in keys:
            assert 0 < outcome_pttl(raw, key) <= ttl, key
    connection.close()


def test_outcome_keys_really_expire_with_a_small_budget(prefix: str, raw: Any, redis_url: str) -> None:
    connection = Connection(redis_url, retry_budget=0.2, socket_timeout=0.3)
    assert connection.outcome_ttl_ms <= 5000
    with Queue("q", connection=connection, prefix=prefix) as queue:
        for n in range(5):
            queue.add("a", {"n": n})
        assert len(outcome_keys(raw, prefix)) == 5
        wait_for(lambda: not outcome_keys(raw, prefix), timeout=connection.outcome_ttl_ms / 1000 + 10)
        assert queue.count() == 5  # only our bookkeeping went: the jobs stay
    connection.close()


def test_finishing_under_keep_all_stores_no_outcome_key(prefix: str, raw: Any, redis_url: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.add_bulk([{"name": "a", "data": {"n": n}} for n in range(20)])
        before = outcome_keys(raw, prefix)
        run_worker(redis_url, prefix, 20, concurrency=4)
        assert raw.zcard(f"{prefix}:q:completed") == 20
        assert outcome_keys(raw, prefix) == before  # the add's own key, no finish keys


@pytest.mark.parametrize("policy", [True, 5, {"age": 3600}])
def test_finishing_under_a_removal_policy_keeps_a_short_outcome_key(
    prefix: str, raw: Any, redis_url: str, policy: Any
) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.add_bulk([{"name": "a", "data": {"n": n}} for n in range(6)])
        before = set(outcome_keys(raw, prefix))
        run_worker(redis_url, prefix, 6, remove_on_complete=policy)
        added = set(outcome_keys(raw, prefix)) - before
        assert len(added) == 6
        assert {outcome_of(raw, key) for key in added} <= {"0"} | {str(n) for n in range(1, 7)}


def test_128_consecutive_calls_share_one_compact_hash(prefix: str, raw: Any, redis_url: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        for n in range(130):
            queue.add("a", {"n": n})
        slots = outcome_keys(raw, prefix)
        hashes = {slot.rpartition("#")[0] for slot in slots}
        assert len(slots) == 130 and 2 <= len(hashes) <= 3
        for key in hashes:
            assert raw.hlen(key) <= 128 and raw.object("encoding", key) in ("listpack", "ziplist")
            assert 0 < raw.pttl(key) <= queue.connection.outcome_ttl_ms


def test_a_token_without_a_field_gets_a_key_of_its_own_with_a_ttl(
    prefix: str, raw: Any, redis_url: str
) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        queue.next_token = lambda: "plain-token"  # type: ignore[method-assign]
        queue.add("a", {})
        again = queue.add("a", {})  # the same token: a repeat, answered from the key
        key = f"{prefix}:q:bqs:op:plain-token"
        assert again.id == "1" and raw.llen(f"{prefix}:q:wait") == 1
        assert raw.get(key) == "1" and 0 < raw.pttl(key) <= queue.connection.outcome_ttl_ms


def test_threads_sharing_outcome_hashes_never_share_a_field(prefix: str, raw: Any, redis_url: str) -> None:
    import threading

    with Queue("q", connection=Connection(redis_url, max_connections=8), prefix=prefix) as queue:
        ids: list[str] = []
        lock = threading.Lock()

        def produce() -> None:
            for n in range(50):
                job = queue.add("a", {"n": n})
                with lock:
                    ids.append(job.id)

        threads = [threading.Thread(target=produce) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        slots = outcome_keys(raw, prefix)
        assert len(slots) == len(set(slots)) == 800
        assert sorted(outcome_of(raw, slot) for slot in slots) == sorted(ids)  # one per call
        assert len(set(ids)) == 800 and raw.llen(f"{prefix}:q:wait") == 800
        for key in {slot.rpartition("#")[0] for slot in slots}:
            assert raw.hlen(key) <= 128
        queue.connection.close()
