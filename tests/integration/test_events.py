"""QueueEvents against a real Redis: typed events, resume, callbacks, prompt close."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis
from jobfactory import put_job

from bullmq_sync import ClientClosed, Connection, InvalidArgument, Job, Queue
from bullmq_sync.events import QueueEvent, QueueEvents


def _xadd(raw: redis.Redis, prefix: str, event: str, **fields: object) -> str:
    return str(raw.xadd(f"{prefix}:q:events", {"event": event, **fields}))


def test_iter_nonblocking_types_fields_as_node_does(connection, prefix, raw):
    events = QueueEvents("q", connection=connection, prefix=prefix, last_event_id="0")
    _xadd(raw, prefix, "added", jobId="1", name="email")
    _xadd(raw, prefix, "progress", jobId="1", data=json.dumps({"pct": 50}))
    _xadd(raw, prefix, "completed", jobId="1", returnvalue=json.dumps([1, "two"]), prev="active")
    _xadd(raw, prefix, "delayed", jobId="2", delay="1700000000123")
    last = _xadd(raw, prefix, "drained")
    got = list(events.iter(block=False))
    assert [e.name for e in got] == ["added", "progress", "completed", "delayed", "drained"]
    assert got[0].fields == {"jobId": "1", "name": "email"}
    assert got[1].fields["data"] == {"pct": 50}
    assert got[2].fields["returnvalue"] == [1, "two"] and got[2].prev == "active"
    assert got[3].fields["delay"] == 1700000000123 and isinstance(got[3]["delay"], int)
    assert got[4].job_id is None and got[4].fields == {}
    assert events.last_event_id == last
    assert got[4].timestamp == int(last.split("-")[0])
    assert list(events.iter(block=False)) == []
    events.close()
    assert connection.closed is False  # borrowed connection stays open


def test_dollar_means_after_creation_and_resume_from_saved_id(connection, prefix, raw):
    _xadd(raw, prefix, "waiting", jobId="old")
    events = QueueEvents("q", connection=connection, prefix=prefix)
    first = _xadd(raw, prefix, "waiting", jobId="a")
    _xadd(raw, prefix, "waiting", jobId="b")
    it = events.iter(block=True, timeout=2)
    event = next(it)
    assert (event.id, event.job_id) == (first, "a")
    it.close()
    saved = events.last_event_id
    events.close()
    with pytest.raises(ClientClosed):
        events.iter()
    _xadd(raw, prefix, "waiting", jobId="c")
    resumed = QueueEvents("q", {"connection": connection, "prefix": prefix, "lastEventId": saved})
    assert [e.job_id for e in resumed.iter(block=False)] == ["b", "c"]
    resumed.close()


def test_job_retry_is_seen_as_waiting_prev_failed(connection, prefix, raw):
    put_job(raw, prefix, "q", "7", state="failed")
    queue = Queue("q", connection=connection, prefix=prefix)
    with QueueEvents("q", connection=connection, prefix=prefix) as events:
        job = Job.from_id(queue, "7")
        assert job is not None
        job.retry()
        got = list(events.iter(block=True, timeout=0.5))
    assert [(e.name, e.job_id, e.prev) for e in got] == [("waiting", "7", "failed")]


def test_blocking_iter_wakes_on_new_event(connection, prefix, raw):
    events = QueueEvents("q", connection=connection, prefix=prefix, block_ms=5000)
    timer = threading.Timer(0.3, _xadd, args=(raw, prefix, "paused"))
    timer.start()
    started = time.monotonic()
    event = next(events.iter(block=True, timeout=4))
    timer.join()
    assert event.name == "paused"
    assert time.monotonic() - started < 3
    events.close()


def test_iter_timeout_ends_iteration(connection, prefix):
    events = QueueEvents("q", connection=connection, prefix=prefix, block_ms=10000)
    started = time.monotonic()
    assert list(events.iter(block=True, timeout=0.3)) == []
    assert 0.25 < time.monotonic() - started < 2
    events.close()


def test_callbacks_on_background_thread_in_order(connection, prefix, raw):
    seen: list[tuple[str, str | None]] = []
    one_job: list[str] = []
    everything: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()
    events = QueueEvents("q", connection=connection, prefix=prefix, block_ms=10000)

    def on_completed(event: QueueEvent) -> None:
        seen.append((event.name, event.job_id))
        if event.job_id == "3":
            done.set()

    def broken(event: QueueEvent) -> None:
        raise RuntimeError("callback bug")

    events.on("completed", on_completed)
    events.on("completed:2", lambda e: one_job.append(e.id))
    events.on("*", lambda e: everything.append(e.name))
    events.on("failed", broken)
    events.on("error", errors.append)
    events.start()
    assert events.running
    _xadd(raw, prefix, "completed", jobId="1", returnvalue="1")
    _xadd(raw, prefix, "failed", jobId="x", failedReason="no")
    second = _xadd(raw, prefix, "completed", jobId="2", returnvalue="null")
    _xadd(raw, prefix, "completed", jobId="3", returnvalue='"s"')
    assert done.wait(5)
    assert seen == [("completed", "1"), ("completed", "2"), ("completed", "3")]
    assert one_job == [second]
    assert everything == ["completed", "failed", "completed", "completed"]
    assert len(errors) == 1 and str(errors[0]) == "callback bug"
    with pytest.raises(Exception, match="already being read"):
        next(events.iter(block=False))
    events.close()
    assert not events.running


def test_close_unblocks_a_pending_read_promptly(connection, prefix, raw):
    events = QueueEvents("q", connection=connection, prefix=prefix, block_ms=60000)
    events.start()
    time.sleep(0.3)  # the thread is now inside XREAD BLOCK 60000
    blocked = [c for c in raw.client_list() if c.get("cmd") == "xread"]
    assert blocked, "the reader should be blocked in XREAD"
    started = time.monotonic()
    events.close()
    assert time.monotonic() - started < 1.0
    assert not events.running
    time.sleep(0.1)
    assert not [
        c for c in raw.client_list() if c.get("cmd") == "xread" and c["id"] == blocked[0]["id"]
    ]
    events.close()  # idempotent


def test_close_from_another_thread_ends_a_user_iteration(connection, prefix):
    events = QueueEvents("q", connection=connection, prefix=prefix, block_ms=60000)
    result: list[list[QueueEvent]] = []
    reader = threading.Thread(target=lambda: result.append(list(events.iter(block=True))))
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    events.close()
    reader.join(5)
    assert not reader.is_alive() and result == [[]]
    assert time.monotonic() - started < 1.0


def test_owned_connection_is_closed(redis_url, prefix):
    events = QueueEvents("q", connection=redis_url, prefix=prefix)
    assert isinstance(events.connection, Connection)
    events.close()
    assert events.connection.closed


def test_bad_input_is_refused_before_redis(connection, prefix, raw):
    with pytest.raises(InvalidArgument):
        QueueEvents("q", connection=connection, prefix=prefix, last_event_id="yesterday")
    with pytest.raises(InvalidArgument):
        QueueEvents("q", connection=connection, prefix=prefix, block_ms=0)
    with pytest.raises(InvalidArgument):
        QueueEvents("q", {"bogus": 1}, connection=connection, prefix=prefix)
    with pytest.raises(InvalidArgument):
        QueueEvents("a:b", connection=connection, prefix=prefix)
    events = QueueEvents("q", connection=connection, prefix=prefix)
    with pytest.raises(InvalidArgument):
        events.iter(timeout=-1)
    with pytest.raises(InvalidArgument):
        events.on("", lambda e: None)
    events.close()
    assert raw.keys(f"{prefix}:*") == []


def test_survives_a_server_restart(local_redis, prefix):
    conn = Connection(local_redis.url, retry_budget=10)
    events = QueueEvents("q", connection=conn, prefix=prefix, last_event_id="0", block_ms=500)
    got: list[str] = []
    done = threading.Event()

    def collect(event: QueueEvent) -> None:
        got.append(str(event.job_id))
        if event.job_id == "after":
            done.set()

    events.on("waiting", collect)
    events.start()
    time.sleep(0.3)
    local_redis.restart()
    client = redis.Redis.from_url(local_redis.url)
    client.xadd(f"{prefix}:q:events", {"event": "waiting", "jobId": "after"})
    client.close()
    assert done.wait(10), got
    assert got == ["after"]
    events.close()
    conn.close()


def test_close_with_a_suspended_iterator_is_prompt(connection, prefix, raw):
    events = QueueEvents("q", connection=connection, prefix=prefix, last_event_id="0")
    _xadd(raw, prefix, "waiting", jobId="1")
    _xadd(raw, prefix, "waiting", jobId="2")
    it = events.iter(block=True)
    assert next(it).job_id == "1"
    started = time.monotonic()
    events.close()  # same thread, iterator paused between two events
    assert time.monotonic() - started < 0.5
    assert list(it) == []  # ends at its next step


def test_autorun_default_starts_with_the_first_listener_as_node(connection, prefix, raw):
    """BullMQ's docs register listeners and never call run(): the thread starts by itself."""
    done = threading.Event()
    events = QueueEvents("q", connection=connection, prefix=prefix)
    try:
        assert not events.running  # nothing to run for yet: iter() stays available
        events.on("error", lambda exc: None)
        assert not events.running  # an error listener alone does not start it
        events.on("completed", lambda e: done.set())
        assert events.running
        _xadd(raw, prefix, "completed", jobId="1", returnvalue="1")
        assert done.wait(5)
    finally:
        events.close()


def test_autorun_false_waits_for_start(connection, prefix, raw):
    for events in (
        QueueEvents("q", connection=connection, prefix=prefix, autorun=False),
        QueueEvents("q", {"autorun": False}, connection=connection, prefix=prefix),
    ):
        events.on("completed", lambda e: None)
        assert not events.running
        events.start()
        assert events.running
        events.close()
    with pytest.raises(InvalidArgument, match="autorun"):
        QueueEvents("q", connection=connection, prefix=prefix, autorun=1)  # type: ignore[arg-type]
