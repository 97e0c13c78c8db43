"""PipelinedScripts (one socket shared by every calling thread) on a real Redis, under faults.

Each test drives real script calls through ``bullmq_sync.pipelined.PipelinedScripts`` on a
private server (``local_redis``) and breaks something while they are in flight: the socket
is killed, the scripts flushed, the server restarted, paused or frozen, the client closed or
forked. The calls use ``jobFinishedState``, a read-only script whose reply carries the job's
own ``returnvalue`` ("r<i>" for job i), so a reply handed to the wrong caller is caught.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from typing import Any

import pytest
import redis
from helpers import wait_for

from bullmq_sync import Connection, Job, Queue, RedisUnavailable, Worker
from bullmq_sync.errors import ClientClosed, InvalidArgument, is_readonly
from bullmq_sync.pipelined import PipelinedScripts

pytestmark = pytest.mark.faults

BASE = "pp:q:"
SCRIPT = "jobFinishedState"

BOTH_MODES = pytest.mark.parametrize(
    "reader_thread", [pytest.param(True, id="reader-thread"), pytest.param(False, id="inline")]
)
"""A fault test run twice: callers sharing the socket through a reader thread, and callers
taking turns that each read their own reply (``reader_thread=False``, a one-slot worker)."""


def _seed(raw: redis.Redis, count: int) -> None:
    """Jobs 0..count-1 in the completed set, job i with returnvalue "r<i>"."""
    pipe = raw.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(f"{BASE}{i}", "returnvalue", f"r{i}")
        pipe.zadd(f"{BASE}completed", {str(i): i})
    pipe.execute()


def _call(pipelined: PipelinedScripts, i: int) -> Any:
    keys = [f"{BASE}completed", f"{BASE}failed", f"{BASE}{i}", f"{BASE}events"]
    return pipelined.call(SCRIPT, keys, [str(i), 10])


def _expected(i: int) -> list[Any]:
    return [1, f"r{i}"]


def _hammer(
    pipelined: PipelinedScripts, threads: int, calls: int, count: int
) -> tuple[list[tuple[int, Any]], list[BaseException]]:
    """``threads`` threads make ``calls`` calls each (job ids spread over ``count`` jobs);
    returns the wrong replies (id, reply) and the errors raised."""
    wrong: list[tuple[int, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        try:
            for k in range(calls):
                i = (t * calls + k) % count
                reply = _call(pipelined, i)
                if reply != _expected(i):
                    wrong.append((i, reply))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers), "a caller never returned"
    return wrong, errors


def _client_id_of(raw: redis.Redis, pipelined: PipelinedScripts) -> str:
    """The server's CLIENT LIST id of the pipelined socket (matched by its local address)."""
    pipe = pipelined._pipe
    assert pipe is not None
    host, port = pipe.socket._sock.getsockname()[:2]
    [entry] = [c for c in raw.client_list() if c["addr"] == f"{host}:{port}"]
    return str(entry["id"])


def _reader_threads(label: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == label and t.is_alive()]


def _stat(raw: redis.Redis, section: str, name: str) -> Any:
    return raw.info(section).get(name)


# -- many callers, one socket ------------------------------------------------------------------


def test_many_threads_each_get_their_own_reply_and_share_socket_reads(local_redis):
    """32 threads x 200 calls through one PipelinedScripts: every caller receives exactly the
    reply to its own call (each reply names its job), all on ONE server connection, and the
    server needed fewer socket reads than there were calls (calls arrived batched)."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 6400)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-many")
    assert _call(pipelined, 0) == _expected(0)  # connects and loads the scripts
    pipe = pipelined._pipe
    reads_before = int(_stat(raw, "stats", "total_reads_processed"))
    evalsha_before = int(raw.info("commandstats")["cmdstat_evalsha"]["calls"])

    wrong, errors = _hammer(pipelined, threads=32, calls=200, count=6400)

    reads = int(_stat(raw, "stats", "total_reads_processed")) - reads_before
    evalsha = int(raw.info("commandstats")["cmdstat_evalsha"]["calls"]) - evalsha_before
    assert errors == [] and wrong == []
    assert evalsha == 6400  # each call sent once: no retry, no resend
    assert pipelined._pipe is pipe and pipe.failure is None  # one socket throughout
    assert len(_reader_threads("pipetest-replies-many")) == 1
    assert reads < 6400, f"{reads} socket reads for 6400 calls: nothing was batched"
    pipelined.close()
    connection.close()


# -- the socket killed ---------------------------------------------------------------------


@BOTH_MODES
def test_killed_socket_fails_over_and_every_caller_still_gets_its_reply(
    local_redis, reader_thread, log_events
):
    """CLIENT KILL of the pipelined socket, several times while 32 threads call: the calls in
    flight fail together and are retried on a new socket; every caller still gets its own
    correct reply and none sees an error."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 2000)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-kill", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    sockets = {id(pipelined._pipe)}
    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and len(kills) < 6:
            time.sleep(0.03)
            try:
                client_id = _client_id_of(raw, pipelined)
            except (AssertionError, ValueError, AttributeError, OSError):
                continue  # between two sockets
            sockets.add(id(pipelined._pipe))
            kills.append(int(raw.execute_command("CLIENT", "KILL", "ID", client_id)))

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        wrong, errors = _hammer(pipelined, threads=32, calls=400, count=2000)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and wrong == []
    assert sum(kills) >= 2, kills  # the socket really was killed mid-run
    retried = [e for e in log_events if e["event"] == "redis.retry"]
    assert any("pipelined socket failed" in str(e["detail"]) for e in retried), retried[:3]
    assert _call(pipelined, 7) == _expected(7)
    pipelined.close()
    wait_for(lambda: not _reader_threads("pipetest-replies-kill"), timeout=5)
    connection.close()


@pytest.mark.parametrize(("concurrency", "pause"), [(16, 0.01), (1, 0.002)])
def test_worker_connections_killed_mid_run_complete_every_job_exactly_once(
    local_redis, log_events, concurrency, pause
):
    """A Worker (finishJob on its own socket: shared by 16 slots, or read by its one slot)
    whose every connection is killed five times mid-run: every job is completed exactly
    once - one completion in the completed set, atm 1, one "completed" event each, the
    processor ran once per job."""
    total = 600
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    with Queue("q", connection=local_redis.url, prefix="w") as queue:
        queue.add_bulk([{"name": "n", "data": {"i": i}} for i in range(total)])
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def proc(job: Job) -> int:
        with lock:
            runs[job.id] += 1
        time.sleep(pause)
        return int(job.data["i"])

    errors: list[BaseException] = []
    kills: list[tuple[int, int]] = []
    worker = Worker("q", proc, connection=local_redis.url, prefix="w", concurrency=concurrency,
                    drain_delay=1, on_error=errors.append)
    with worker:
        for fraction in (0.15, 0.3, 0.45, 0.6, 0.75):
            wait_for(lambda f=fraction: raw.zcard("w:q:completed") >= total * f, timeout=30,
                     step=0.005)
            done = int(raw.zcard("w:q:completed"))
            killed = int(raw.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
            kills.append((done, killed))
        wait_for(lambda: raw.zcard("w:q:completed") == total and raw.llen("w:q:active") == 0,
                 timeout=40)
    completions = collections.Counter(
        f["jobId"] for _, f in raw.xrange("w:q:events") if f["event"] == "completed")
    ids = set(runs)
    assert len(ids) == total and max(runs.values()) == 1, [k for k, v in runs.items() if v > 1]
    assert raw.zcard("w:q:completed") == total and raw.zcard("w:q:failed") == 0
    assert set(completions) == ids and set(completions.values()) == {1}
    assert all(raw.hget(f"w:q:{job_id}", "atm") == "1" for job_id in ids)
    assert {raw.hget(f"w:q:{job_id}", "returnvalue") for job_id in ids} == {
        str(i) for i in range(total)}
    assert all(0 < done < total and killed >= 1 for done, killed in kills), kills
    assert any(e["event"] == "redis.retry" for e in log_events)  # the kills were felt


@pytest.mark.parametrize(("concurrency", "shared"), [(1, False), (3, True)])
def test_a_worker_shares_a_finishing_socket_only_when_it_has_several_slots(
    local_redis, concurrency, shared
):
    """With one slot there is nothing to pipeline: it reads its own finishing replies (no
    reader thread); with several, one shared socket and its reader thread."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    seen: list[bool] = []

    def proc(job: Job) -> None:
        seen.append(any(t.name == "bullmq-sync-replies" for t in threading.enumerate()))

    with Queue("q", connection=local_redis.url, prefix="s") as queue:
        queue.add_bulk([{"name": "n", "data": {}} for _ in range(20)])
    with Worker("q", proc, connection=local_redis.url, prefix="s", concurrency=concurrency,
                drain_delay=1) as worker:
        wait_for(lambda: raw.zcard("s:q:completed") == 20)
        pipe = worker._finisher._pipelined._pipe  # type: ignore[union-attr]
        assert pipe is not None and pipe.reader_thread is shared and pipe.failure is None
    assert len(seen) == 20 and any(seen) is shared and (not shared or seen[-1])


# -- scripts flushed, server restarted ---------------------------------------------------


def test_script_flush_while_calls_are_in_flight_is_recovered(local_redis, log_events):
    """SCRIPT FLUSH five times while 16 threads call: the calls answered NOSCRIPT load the
    script again and are resent; every caller gets its correct reply, no error."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 1000)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-flush")
    assert _call(pipelined, 0) == _expected(0)
    flushes = 0
    stop = threading.Event()

    def flusher() -> None:
        nonlocal flushes
        while not stop.is_set() and flushes < 5:
            time.sleep(0.02)
            raw.script_flush()
            flushes += 1

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        wrong, errors = _hammer(pipelined, threads=16, calls=400, count=1000)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and wrong == []
    assert flushes >= 2
    reloads = [e for e in log_events if e["event"] == "script.reloaded"]
    assert reloads and {e["script"] for e in reloads} == {SCRIPT}
    pipelined.close()
    connection.close()


def test_a_flush_between_reload_and_resend_costs_one_more_reload_not_an_error(
    local_redis, log_events
):
    """The script cache is flushed again right after a call reloaded its script, before the
    resend: the resend's NOSCRIPT loads it once more, and the call returns its reply."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 3)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-reflush")
    assert _call(pipelined, 0) == _expected(0)
    execute = connection.execute
    flushes_after_load = [2]

    def load_then_flush(*args: Any, **kwargs: Any) -> Any:
        reply = execute(*args, **kwargs)
        if args[:2] == ("SCRIPT", "LOAD") and flushes_after_load[0] > 0:
            flushes_after_load[0] -= 1
            raw.script_flush()
        return reply

    connection.execute = load_then_flush  # type: ignore[method-assign]
    raw.script_flush()
    log_events.clear()
    assert _call(pipelined, 1) == _expected(1)
    assert [e["script"] for e in log_events if e["event"] == "script.reloaded"] == [SCRIPT] * 3
    pipelined.close()
    connection.close()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("parser", ["hiredis", "python"])
def test_replies_and_error_replies_are_read_alike_with_or_without_hiredis(
    local_redis, log_events, parser, protocol
):
    """The reader thread reads through hiredis's C reader when the socket uses it, through
    redis-py's pure-Python parser otherwise, in RESP2 and RESP3: 8 threads get their own
    replies, and NOSCRIPT error replies (scripts flushed twice meanwhile) reach their callers
    as errors, which load the script again."""
    from redis._parsers import _HiredisParser, _RESP2Parser

    from bullmq_sync.pipelined import _reply_reader

    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 500)
    parser_class = _HiredisParser if parser == "hiredis" else _RESP2Parser
    pool = redis.ConnectionPool.from_url(
        local_redis.url, parser_class=parser_class, protocol=protocol
    )
    connection = Connection(pool)
    pipelined = PipelinedScripts(connection, label=f"pipetest-replies-{parser}")
    assert _call(pipelined, 0) == _expected(0)
    socket = pipelined._pipe.socket  # type: ignore[union-attr]
    assert isinstance(socket._parser, _HiredisParser) == (parser == "hiredis")
    assert socket.protocol == protocol
    # The C reader is used with hiredis (a fresh socket's reader, as the reader thread's).
    probe = connection.dedicated(socket_timeout=5).connection_pool.get_connection()
    assert (_reply_reader(probe).__name__ == "read") == (parser == "hiredis")
    probe.disconnect()
    stop = threading.Event()

    def flusher() -> None:
        for _ in range(2):
            if stop.wait(0.05):
                return
            raw.script_flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        wrong, errors = _hammer(pipelined, threads=8, calls=300, count=500)
    finally:
        stop.set()
        thread.join()
    assert errors == [] and wrong == []
    assert any(e["event"] == "script.reloaded" for e in log_events)
    pipelined.close()
    connection.close()


@BOTH_MODES
def test_server_restart_during_calls_is_survived_within_the_budget(
    local_redis, reader_thread, log_events
):
    """The server is killed and started again on the same port while 8 threads call (its
    data comes back from a dump): calls made while it is down wait, retry, and succeed once
    it is back, each with its own reply; calls go on working afterwards."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 500)
    raw.save()  # the restarted server loads dump.rdb from its directory
    connection = Connection(local_redis.url, retry_budget=10.0)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-restart", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    restarted = threading.Event()
    stop = threading.Event()
    counts = collections.Counter[str]()
    wrong: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def run(t: int) -> None:
        k = 0
        try:
            while not stop.is_set():
                i = (t * 61 + k) % 500
                reply = _call(pipelined, i)
                if reply != _expected(i):
                    wrong.append((i, reply))
                counts["after" if restarted.is_set() else "before"] += 1
                k += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: counts["before"] > 500 or errors, timeout=10, step=0.005)
        old_pipe = pipelined._pipe
        local_redis.restart()
        restarted.set()
        wait_for(lambda: counts["after"] > 500 or errors, timeout=15, step=0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    assert errors == [] and wrong == []
    assert pipelined._pipe is not old_pipe and old_pipe is not None and old_pipe.failure
    assert any(e["event"] == "redis.retry" for e in log_events)
    pipelined.close()
    connection.close()


# -- close ---------------------------------------------------------------------------------


@BOTH_MODES
def test_close_wakes_blocked_callers_with_client_closed_at_once(local_redis, reader_thread):
    """Calls waiting for replies that do not come (the server paused) get ClientClosed as
    soon as close() is called, not after the socket timeout or the retry budget; later
    calls raise ClientClosed too, and the reader thread ends."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 10)
    label = "pipetest-replies-close"
    connection = Connection(local_redis.url)  # socket_timeout 10 s, retry_budget 10 s
    pipelined = PipelinedScripts(connection, label=label, reader_thread=reader_thread)
    assert _call(pipelined, 1) == _expected(1)
    assert len(_reader_threads(label)) == (1 if reader_thread else 0)
    outcomes: dict[int, tuple[Any, float]] = {}

    def blocked(i: int) -> None:
        try:
            outcomes[i] = (_call(pipelined, i), time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcomes[i] = (exc, time.monotonic())

    raw.execute_command("CLIENT", "PAUSE", 8000, "ALL")  # raw is paused too from here on
    threads = [threading.Thread(target=blocked, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    assert outcomes == {}  # all of them are waiting for a reply
    closed_at = time.monotonic()
    pipelined.close()
    for thread in threads:
        thread.join(5)
    assert len(outcomes) == 8
    for error, when in outcomes.values():
        assert isinstance(error, ClientClosed), error
        assert when - closed_at < 1.0
    with pytest.raises(ClientClosed):
        _call(pipelined, 2)
    wait_for(lambda: not _reader_threads(label), timeout=2)
    connection.close()


# -- socket timeout ------------------------------------------------------------------------


@BOTH_MODES
def test_reply_later_than_the_socket_timeout_fails_over_and_succeeds(
    local_redis, reader_thread, log_events
):
    """socket_timeout 0.5 s and the server paused for 1.5 s: the calls waiting on the socket
    time out, the socket is given up, and the calls are sent again on a new one and answered
    correctly when the server resumes (within the 5 s retry budget)."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 10)
    connection = Connection(local_redis.url, socket_timeout=0.5, retry_budget=5.0)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-timeout", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    old_pipe = pipelined._pipe
    replies: dict[int, Any] = {}

    def call(i: int) -> None:
        try:
            replies[i] = _call(pipelined, i)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            replies[i] = exc

    raw.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert replies == {i: _expected(i) for i in range(1, 5)}
    assert elapsed > 1.0  # they really waited for the pause to end
    assert old_pipe is not None and isinstance(old_pipe.failure, redis.exceptions.TimeoutError)
    assert pipelined._pipe is not old_pipe
    assert any(e["event"] == "redis.retry" and e["error"] == "TimeoutError" for e in log_events)
    pipelined.close()
    connection.close()


@BOTH_MODES
def test_server_that_never_answers_raises_redis_unavailable_after_the_budget(
    local_redis, reader_thread
):
    """A frozen server (SIGSTOP: the kernel still accepts connections, nothing answers) for
    longer than socket_timeout + retry_budget: the call should give up with RedisUnavailable
    after about the budget, as Connection.run_script does in the same situation."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 10)
    connection = Connection(local_redis.url, socket_timeout=0.5, retry_budget=0.5)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-frozen", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    pid = local_redis.process.pid
    thaw = threading.Timer(4.0, os.kill, args=(pid, signal.SIGCONT))
    os.kill(pid, signal.SIGSTOP)
    thaw.start()
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            _call(pipelined, 1)
        assert time.monotonic() - started < 3.0
    finally:
        thaw.join()
        os.kill(pid, signal.SIGCONT)
        pipelined.close()
        connection.close()


# -- fork ----------------------------------------------------------------------------------


@BOTH_MODES
def test_forked_child_gets_its_own_socket_and_the_parents_keeps_working(local_redis, reader_thread):
    """After fork() a child calling through the parent's PipelinedScripts object (from 4
    threads) gets a fresh socket and its reader and correct replies; the parent's socket is
    not disturbed and keeps answering."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 400)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-fork", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    parent_pipe = pipelined._pipe
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if everything held
        code = 1
        try:
            wrong, errors = _hammer(pipelined, threads=4, calls=100, count=400)
            child_pipe = pipelined._pipe
            if (not wrong and not errors and child_pipe is not parent_pipe
                    and child_pipe is not None and child_pipe.pid == os.getpid()):
                code = 0
            pipelined.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wrong, errors = _hammer(pipelined, threads=4, calls=100, count=400)
    assert errors == [] and wrong == []
    assert pipelined._pipe is parent_pipe and parent_pipe is not None
    assert parent_pipe.failure is None
    pipelined.close()
    connection.close()


@BOTH_MODES
def test_close_in_a_forked_child_leaves_the_parents_socket_alone(local_redis, reader_thread):
    """A forked child that closes the inherited PipelinedScripts before calling must not
    break the parent's socket (the child's close is about the child only)."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 10)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-forkclose", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    parent_pipe = pipelined._pipe
    pid = os.fork()
    if pid == 0:
        try:
            pipelined.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.3)  # let the parent's reader see whatever happened to its socket
    try:
        assert parent_pipe is not None and parent_pipe.failure is None
        assert _call(pipelined, 1) == _expected(1)
        assert pipelined._pipe is parent_pipe
    finally:
        pipelined.close()
        connection.close()


# -- bad arguments -------------------------------------------------------------------------


def test_unencodable_argument_raises_invalid_argument_and_sends_nothing(local_redis):
    """A str with a lone surrogate (in ARGV or in KEYS) raises InvalidArgument at once, not
    retried; no EVALSHA reaches the server, and the shared socket stays healthy."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 10)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-bad")
    assert _call(pipelined, 0) == _expected(0)
    pipe = pipelined._pipe
    evalsha = int(raw.info("commandstats")["cmdstat_evalsha"]["calls"])
    keys = [f"{BASE}completed", f"{BASE}failed", f"{BASE}1", f"{BASE}events"]
    started = time.monotonic()
    with pytest.raises(InvalidArgument):
        pipelined.call(SCRIPT, keys, ["\ud800", 10])
    with pytest.raises(InvalidArgument):
        pipelined.call(SCRIPT, [*keys[:2], f"{BASE}\udcff", keys[3]], ["1", 10])
    assert time.monotonic() - started < 1.0
    assert int(raw.info("commandstats")["cmdstat_evalsha"]["calls"]) == evalsha
    assert pipelined._pipe is pipe and pipe is not None and pipe.failure is None
    assert _call(pipelined, 3) == _expected(3)
    assert int(raw.info("commandstats")["cmdstat_evalsha"]["calls"]) == evalsha + 1
    pipelined.close()
    connection.close()


def test_a_write_blocked_by_a_frozen_server_holds_up_no_other_caller(local_redis):
    """A 64 MB call to a frozen server blocks in the socket write: the write is bounded by
    the socket timeout, and neither a small call made meanwhile nor close() waits for it;
    all return (RedisUnavailable / ClientClosed) while the server is still frozen."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 3)
    connection = Connection(local_redis.url, socket_timeout=0.5, retry_budget=0.5)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-bigwrite")
    assert _call(pipelined, 0) == _expected(0)
    keys = [f"{BASE}completed", f"{BASE}failed", f"{BASE}0", f"{BASE}events"]
    outcomes: dict[str, BaseException | Any] = {}

    def run(name: str, call: Any) -> None:
        try:
            outcomes[name] = call()
        except BaseException as exc:  # noqa: BLE001 - the test looks at what was raised
            outcomes[name] = exc

    pid = local_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        big = threading.Thread(target=run, args=(
            "big", lambda: pipelined.call(SCRIPT, keys, ["0", 10, "x" * (64 << 20)])))
        small = threading.Thread(target=run, args=("small", lambda: _call(pipelined, 1)))
        big.start()
        wait_for(lambda: pipelined._pipe is not None and pipelined._pipe._write.locked())
        small.start()
        small.join(6)
        big.join(6)
        run("close", pipelined.close)
        frozen = _state_of(pid) == "T"  # still stopped: nobody waited for the server
    finally:
        os.kill(pid, signal.SIGCONT)
    assert not big.is_alive() and not small.is_alive() and frozen
    assert isinstance(outcomes["big"], RedisUnavailable), outcomes
    assert isinstance(outcomes["small"], (RedisUnavailable, ClientClosed)), outcomes
    assert outcomes["close"] is None
    connection.close()


def _state_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_close_hands_calls_in_flight_client_closed_without_a_retry(local_redis, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 2)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(connection, label="pipetest-replies-close2")
    assert _call(pipelined, 0) == _expected(0)
    raw.execute_command("CLIENT", "PAUSE", 3000, "ALL")
    outcome: list[BaseException] = []

    def waiting_call() -> None:
        try:
            _call(pipelined, 1)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=waiting_call)
    thread.start()
    wait_for(lambda: pipelined._pipe is not None and len(pipelined._pipe._waiting) == 1)
    pipelined.close()
    thread.join(5)
    raw.execute_command("CLIENT", "UNPAUSE")
    assert len(outcome) == 1 and isinstance(outcome[0], ClientClosed)
    assert not [e for e in log_events if e["event"].startswith("redis.")]  # no retry at all
    connection.close()


class _ClosedMidWrite:
    """A socket whose next write starts only after ``close()`` shut it down."""

    def __init__(self, sock: Any, pipelined: PipelinedScripts) -> None:
        self._sock = sock
        self._pipelined = pipelined

    def sendall(self, data: bytes) -> None:
        self._pipelined.close()
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@BOTH_MODES
def test_a_write_cut_short_by_close_raises_client_closed_without_a_retry(
    local_redis, reader_thread, log_events
):
    """close() shuts the socket while a call is being written: the write fails with EPIPE, and
    the caller gets ClientClosed at once, not a transient error that is retried."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    _seed(raw, 2)
    connection = Connection(local_redis.url)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-close3", reader_thread=reader_thread
    )
    assert _call(pipelined, 0) == _expected(0)
    pipe = pipelined._pipe
    assert pipe is not None
    pipe.socket._sock = _ClosedMidWrite(pipe.socket._sock, pipelined)
    with pytest.raises(ClientClosed):
        _call(pipelined, 1)
    assert not [e for e in log_events if e["event"].startswith("redis.")]  # no retry at all
    connection.close()


@BOTH_MODES
def test_a_readonly_reply_replaces_the_socket(local_redis, reader_thread):
    """A server turned replica answers READONLY: the shared socket is dropped so the retry
    reconnects (a failover behind a DNS name lands on the new primary), as a pooled call
    drops its connection."""
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    connection = Connection(local_redis.url, retry_budget=1.0)
    pipelined = PipelinedScripts(
        connection, label="pipetest-replies-readonly", reader_thread=reader_thread
    )

    def update(n: int) -> Any:
        keys = [f"{BASE}x", f"{BASE}events", f"{BASE}meta", f"{BASE}op{n}"]
        return pipelined.call("updateJobFields", keys, ["x", "data", f'{{"a":{n}}}', "", 1000])

    raw.hset(f"{BASE}x", "data", "{}")
    assert update(1) == [0]
    old_pipe = pipelined._pipe
    raw.execute_command("REPLICAOF", "127.0.0.1", "1")  # an address that never answers
    try:
        with pytest.raises(RedisUnavailable):
            update(2)
    finally:
        raw.execute_command("REPLICAOF", "NO", "ONE")
    assert old_pipe is not None and is_readonly(old_pipe.failure)
    assert update(3) == [0] and raw.hget(f"{BASE}x", "data") == '{"a":3}'
    assert pipelined._pipe is not old_pipe
    pipelined.close()
    connection.close()
