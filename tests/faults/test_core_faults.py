"""Faults the core must hide or report truthfully: lost replies, lost scripts, restarts, forks."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
from jobfactory import put_job
from proxy import ReplyDroppingProxy

from bullmq_sync import Connection, Job, PoolTimeout, Queue, RedisUnavailable

pytestmark = pytest.mark.faults


def test_reply_lost_after_the_script_ran_is_not_applied_twice(local_redis, prefix, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    proxy = ReplyDroppingProxy(local_redis.port)
    put_job(raw, prefix, "q", "1")
    with Queue("q", connection=Connection(proxy.url), prefix=prefix) as queue:
        job = Job.from_id(queue, "1")  # warms the pool and preloads the scripts
        proxy.drop_next_reply()
        job.retry()
    events = log_events
    assert proxy.dropped == 1
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    waiting = [e for _, e in raw.xrange(f"{prefix}:q:events") if e["event"] == "waiting"]
    assert len(waiting) == 1
    [retried] = [e for e in events if e["event"] == "job.retried"]
    assert retried["replayed"] is True
    assert any(e["event"] == "redis.retry" for e in events)
    proxy.close()


def test_lost_reply_for_a_refused_retry_still_reports_the_refusal(local_redis, prefix):
    from bullmq_sync import JobNotInState

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    proxy = ReplyDroppingProxy(local_redis.port)
    put_job(raw, prefix, "q", "1", state="wait")
    with Queue("q", connection=proxy.url, prefix=prefix) as queue:
        job = Job.from_id(queue, "1")
        proxy.drop_next_reply()
        with pytest.raises(JobNotInState):
            job.retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    proxy.close()


def test_script_flush_between_calls_is_invisible(local_redis, prefix, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    with Queue("q", connection=local_redis.url, prefix=prefix) as queue:
        put_job(raw, prefix, "q", "1")
        Job.from_id(queue, "1").retry()
        raw.script_flush()
        put_job(raw, prefix, "q", "2")
        Job.from_id(queue, "2").retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["2", "1"]
    assert [e["script"] for e in log_events if e["event"] == "script.reloaded"] == ["retryFinishedJob"]


def test_a_flush_between_reload_and_resend_costs_one_more_reload(
    local_redis, prefix, log_events, monkeypatch
):
    """SCRIPT FLUSH lands twice right after the pool path reloaded a script, before its
    resend: each resend's NOSCRIPT loads the script once more, and the call succeeds."""
    from bullmq_sync import connection as connection_module

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    command = connection_module._command
    flushes_after_load = [2]

    def load_then_flush(connection, args):  # type: ignore[no-untyped-def]
        reply = command(connection, args)
        if tuple(args[:2]) == ("SCRIPT", "LOAD") and flushes_after_load[0] > 0:
            flushes_after_load[0] -= 1
            raw.script_flush()
        return reply

    with Queue("q", connection=local_redis.url, prefix=prefix) as queue:
        put_job(raw, prefix, "q", "1")
        job = Job.from_id(queue, "1")
        raw.script_flush()
        log_events.clear()
        monkeypatch.setattr(connection_module, "_command", load_then_flush)
        job.retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert [e["script"] for e in log_events if e["event"] == "script.reloaded"] == [
        "retryFinishedJob"] * 3


def test_server_restart_between_calls_is_invisible(local_redis, prefix):
    with Queue("q", connection=local_redis.url, prefix=prefix) as queue:
        raw = redis.Redis(port=local_redis.port, decode_responses=True)
        put_job(raw, prefix, "q", "1")
        Job.from_id(queue, "1").retry()
        local_redis.restart()  # a fresh server: no data, no scripts, every socket broken
        raw = redis.Redis(port=local_redis.port, decode_responses=True)
        put_job(raw, prefix, "q", "2")
        Job.from_id(queue, "2").retry()
        assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["2"]


def test_server_gone_for_longer_than_the_budget_raises_redis_unavailable(local_redis, prefix):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    put_job(raw, prefix, "q", "1")
    with Queue("q", connection=Connection(local_redis.url, retry_budget=0.6), prefix=prefix) as queue:
        job = Job.from_id(queue, "1")
        local_redis.kill()
        started = time.monotonic()
        with pytest.raises(RedisUnavailable) as info:
            job.retry()
        assert time.monotonic() - started < 5
        assert info.value.attempts >= 2


def test_forked_child_gets_its_own_connections(local_redis, prefix):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    put_job(raw, prefix, "q", "1")
    put_job(raw, prefix, "q", "2")
    with Queue("q", connection=local_redis.url, prefix=prefix) as queue:
        Job.from_id(queue, "1").retry()  # the parent's pool now holds a live socket
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                Job.from_id(queue, "2").retry()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        put_job(raw, prefix, "q", "3")
        Job.from_id(queue, "3").retry()  # the parent's sockets were not disturbed
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["3", "2", "1"]


def test_pool_timeout_is_typed(redis_url):
    connection = Connection(redis_url, max_connections=1, pool_timeout=0.2)
    held = connection.pool.get_connection()
    try:
        with pytest.raises(PoolTimeout):
            connection.execute("PING")
    finally:
        connection.pool.release(held)
    assert connection.execute("PING") in (True, "PONG")
    connection.close()


def test_64_threads_on_16_connections_never_exceed_the_pool(redis_url, raw, prefix):
    connection = Connection(redis_url, max_connections=16)
    for i in range(256):
        put_job(raw, prefix, "q", str(i))
    queue = Queue("q", connection=connection, prefix=prefix)
    ids = iter(range(256))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        while True:
            with lock:
                job_id = next(ids, None)
            if job_id is None:
                return
            try:
                Job.from_id(queue, str(job_id)).retry()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raw.llen(f"{prefix}:q:wait") == 256
    assert 1 <= connection.pool.peak_in_use <= 16
    connection.close()
