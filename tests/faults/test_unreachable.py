"""An unreachable Redis: an exact retry budget, one warning and one summary, truthful numbers."""

from __future__ import annotations

import re
import threading
import time

import pytest
import redis
from jobfactory import put_job
from redis_server import free_port

from bullmq_sync import Connection, Job, Queue, RedisUnavailable
from bullmq_sync.connection import INTERACTIVE_RETRY_BUDGET


def retry_events(log_events: list) -> list:
    return [e for e in log_events if e["event"].startswith("redis.")]


def test_closed_port_spends_exactly_the_budget_and_says_so(log_events):
    port = free_port()
    connection = Connection(f"redis://127.0.0.1:{port}", retry_budget=1.2)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        connection.execute("PING")
    elapsed = time.monotonic() - started
    connection.close()
    error = info.value
    assert 1.2 <= elapsed < 1.2 + 1.0  # no early give-up, no attempt after the budget
    match = re.fullmatch(
        rf"could not reach Redis at redis://127\.0\.0\.1:{port} \((\d+) attempts in (\d+\.\d) s\): "
        r".*Connection refused.*",
        str(error),
    )
    assert match, str(error)
    assert int(match.group(1)) == error.attempts >= 3
    assert float(match.group(2)) == pytest.approx(1.2, abs=0.15)
    events = retry_events(log_events)
    warnings = [e for e in events if e["log_level"] in ("warning", "error")]
    assert [e["event"] for e in warnings] == ["redis.retry", "redis.gave_up"]  # not one per attempt
    first, summary = warnings
    assert first["attempt"] == 1 and first["budget_s"] == 1.2
    assert first["where"] == f"redis://127.0.0.1:{port}"
    assert summary["attempts"] == error.attempts
    debug = [e for e in events if e["event"] == "redis.retry_attempt"]
    assert [e["attempt"] for e in debug] == list(range(2, error.attempts))


def test_zero_budget_tries_once():
    connection = Connection(f"redis://127.0.0.1:{free_port()}", retry_budget=0)
    with pytest.raises(RedisUnavailable) as info:
        connection.execute("PING")
    assert info.value.attempts == 1 and "(1 attempt)" in str(info.value)


def test_server_killed_mid_run_then_back(local_redis, prefix, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    put_job(raw, prefix, "q", "1", state="failed")
    with Queue("q", connection=Connection(local_redis.url, retry_budget=0.8), prefix=prefix) as queue:
        assert queue.get_job_counts("failed") == {"failed": 1}
        local_redis.kill()
        with pytest.raises(RedisUnavailable) as info:
            queue.get_job_counts("failed")
        assert f"could not reach Redis at {local_redis.url}" in str(info.value)
        assert info.value.attempts >= 2
        [summary] = [e for e in log_events if e["event"] == "redis.gave_up"]
        assert summary["attempts"] == info.value.attempts
        local_redis.start()
        assert queue.get_job_counts("failed") == {"failed": 0}  # a fresh server, same pool


def test_server_back_within_the_budget(local_redis, prefix, log_events):
    """The job survives the outage (saved before the kill, loaded at restart), so whenever the
    retry lands after the restart, it finds the job."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    put_job(raw, prefix, "q", "1", state="failed")
    with Queue("q", connection=Connection(local_redis.url, retry_budget=15), prefix=prefix) as queue:
        job = Job.from_id(queue, "1")
        assert job is not None
        raw.save()  # dump.rdb in the server's dir: the restarted server loads it
        local_redis.kill()
        back = threading.Thread(target=lambda: (time.sleep(0.7), local_redis.start()))
        back.start()
        job.retry()
        back.join()
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert raw.zcard(f"{prefix}:q:failed") == 0
    warnings = [e["event"] for e in log_events if e["event"].startswith("redis.")
                and e["log_level"] == "warning"]
    assert warnings == ["redis.retry"]
    [recovered] = [e for e in log_events if e["event"] == "redis.recovered"]
    assert recovered["attempts"] >= 2


def test_notebook_view_uses_the_short_budget():
    port = free_port()
    queue = Queue("q", connection=Connection(f"redis://127.0.0.1:{port}"))  # budget 10 s
    started = time.monotonic()
    html = queue._repr_html_()
    elapsed = time.monotonic() - started
    assert elapsed < INTERACTIVE_RETRY_BUDGET + 1.5
    assert f"127.0.0.1:{port}" in html and "Connection refused" in html
    job = Job(queue=queue, id="1", name="n", data={}, timestamp=1)
    started = time.monotonic()
    assert "unknown" in job._repr_html_()
    assert time.monotonic() - started < INTERACTIVE_RETRY_BUDGET + 1.5
    queue.connection.close()


def test_short_budget_is_per_thread():
    connection = Connection(f"redis://127.0.0.1:{free_port()}", retry_budget=1.5)
    took: dict[str, float] = {}

    def other() -> None:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            connection.execute("PING")
        took["other"] = time.monotonic() - started

    with connection.short_budget(0.3):
        thread = threading.Thread(target=other)
        thread.start()
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            connection.execute("PING")
        took["mine"] = time.monotonic() - started
        thread.join()
    assert took["mine"] < 1.0 <= 1.5 <= took["other"]
    connection.close()


@pytest.fixture
def silent_port():
    """A port whose listen backlog is full: a new connect() hangs, as on a host that drops SYNs."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.settimeout(0.2)
        try:
            filler.connect(("127.0.0.1", port))
        except OSError:
            pass
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_notebook_view_of_a_host_that_never_answers_is_quick(silent_port):
    # The usual connect timeout is 5 s; the view caps it with its budget.
    queue = Queue("q", connection=Connection(f"redis://127.0.0.1:{silent_port}"))
    started = time.monotonic()
    html = queue._repr_html_()
    assert time.monotonic() - started < INTERACTIVE_RETRY_BUDGET + 1.0
    assert f"could not reach Redis at redis://127.0.0.1:{silent_port}" in html
    assert "Timeout" in html or "timed out" in html
    queue.connection.close()


def test_the_connect_cap_ends_with_the_block(silent_port):
    connection = Connection(f"redis://127.0.0.1:{silent_port}", socket_connect_timeout=0.8,
                            retry_budget=0)
    with connection.short_budget(0.3):
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            connection.execute("PING")
        assert time.monotonic() - started < 0.7
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        connection.execute("PING")
    assert time.monotonic() - started >= 0.7  # its own connect timeout again
    connection.close()
