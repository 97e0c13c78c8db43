"""Python side of the Node BullMQ interop driver (``driver.js``).

``NodeBullMQ`` starts ``node driver.js`` as a child process and talks to it
with JSON lines.  Calls are thread-safe and may be issued concurrently from
several threads (the driver handles requests concurrently and replies are
matched by id), so a test can e.g. run a Node ``process`` call in a background
thread while adding jobs from the main thread.

Operations (every op takes ``queue`` and an optional ``prefix``, default
``"bull"``; JSON-able keyword arguments are sent as-is)::

    ping                                   -> {major, version, node}
    add          name, data, opts          -> {id}
    addBulk      jobs=[{name, data, opts}] -> {ids}
    addFlow      flow={name, queueName, data, opts, children: [...]}
                 (queue not needed)        -> {ids: {id, children: [...]}}
    getJob       jobId                     -> None | {json: job.toJSON(), state}
    retryJob     jobId, state="failed", opts={}
    retryJobs    opts={}
    promoteJobs  opts={}
    pause / resume / isPaused
    getJobCounts types=[...]               -> {type: count}
    getJobs      types, start=0, end=-1, asc=False -> [job.toJSON(), ...]
    obliterate   opts={}
    drain        delayed=False
    setGlobalConcurrency concurrency
    process      count=1, concurrency, timeoutMs=10000, workerOpts={}
                 -> [{event: "completed", jobId, name, returnvalue, attemptsMade}
                     | {event: "failed", jobId, name, failedReason, attemptsMade}]
    eventsStart                            (QueueEvents from "now")
    eventsCollect waitFor={event, jobId}, timeoutMs=5000
                 -> [{event, jobId?, args: [...]}]  (returns and clears)
    eventsStop
    getRateLimitTtl maxJobs?               -> ms   (worker steps)
    getMetrics   type, start=0, end=-1     -> {meta, data, count}
    rateLimit    expireTimeMs
    manualGetNextJob token, block=False, workerOpts={}  -> None | {id, json}
    manualMoveToCompleted jobId, token, returnValue, fetchNext=False -> next id | None
    manualMoveToFailed    jobId, token, message, fetchNext=False     -> next id | None
    manualExtendLock      jobId, token, duration                     -> 1 | 0
                 (manual processing: one processor-less Node Worker per queue)

The ``process`` op runs a data-driven processor; see ``PROCESSOR_CONVENTIONS``.

Semantics worth knowing when writing assertions:

* ``job.toJSON()`` goes through ``JSON.stringify``: fields that are
  ``undefined`` in Node (e.g. ``failedReason``, ``parentKey``, ``finishedOn``
  of a job that never ran) are absent, not ``None``.
* ``process`` closes its Worker once ``count`` events were seen; a Worker
  fetches the next job as part of finishing one, and jobs already fetched are
  finished during close, so the list can be longer than ``count``.  On
  timeout it returns what it has and force-closes the Worker: a job still in
  the processor stays ``active`` (until its lock expires / stall check).
* ``eventsCollect`` never fails on timeout: it returns what was collected;
  assert on the list.  Stream ids are the last element of ``args``.
* Error replies: ``NodeBullMQError.code`` is BullMQ's numeric script code
  (e.g. -1 missing job, -3 not in state) when Node attached one, else None;
  ``retryJob`` on a missing job raises name ``JobNotFound``.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

INTEROP_DIR = Path(__file__).resolve().parent
DRIVER = INTEROP_DIR / "driver.js"
NODE_MODULES = INTEROP_DIR / "node_modules"

#: Package directory required for each supported driver major version.
MAJOR_PACKAGES = {6: "bullmq", 5: "bullmq5"}

DEFAULT_CALL_TIMEOUT = 30.0

PROCESSOR_CONVENTIONS = """
Processor behaviour is read from job.data (a dict):
  {"__sleepMs": n}                  wait n ms first (combinable with the rest)
  {"__unrecoverable": "msg"}        raise UnrecoverableError(msg)
  {"__fail": "msg"}                 raise Error(msg)
  {"__failTimes": n, "__failMessage": m}
                                    raise Error(m) while job.attemptsMade < n
  {"__return": value}               return value
  a parent job of a flow            return its children values
  anything else                     return {"ok": true, "id": job.id}
"""


class NodeBullMQError(Exception):
    """An error reply from the driver (the Node side raised)."""

    def __init__(self, name: str, message: str, code: Any = None):
        super().__init__(
            f"{name}: {message}" + (f" (code {code})" if code is not None else "")
        )
        self.name = name
        self.message = message
        self.code = code


class NodeDriverDied(RuntimeError):
    """The driver process exited (or could not be talked to)."""


class NodeCallTimeout(TimeoutError):
    """A driver call got no reply in time."""


def _ci() -> bool:
    """CI must fail, not skip, when the interop prerequisites are missing."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def node_executable() -> str | None:
    return shutil.which("node")


def node_unavailable_reason(major: int = 6) -> str | None:
    """Why the Node driver cannot run, or None if it can."""
    if node_executable() is None:
        return "`node` is not on PATH"
    package = MAJOR_PACKAGES.get(major)
    if package is None:
        return f"unsupported BullMQ major version {major!r}"
    if not (NODE_MODULES / package / "package.json").is_file():
        return f"{NODE_MODULES / package} is missing (run `npm ci` in {INTEROP_DIR})"
    if not (NODE_MODULES / "ioredis" / "package.json").is_file():
        return f"{NODE_MODULES / 'ioredis'} is missing (run `npm ci` in {INTEROP_DIR})"
    return None


def node_available(major: int = 6) -> bool:
    return node_unavailable_reason(major) is None


def require_node(major: int = 6) -> None:
    """Skip the calling test if Node interop is unavailable; fail instead on CI."""
    reason = node_unavailable_reason(major)
    if reason is None:
        return
    import pytest

    message = f"Node BullMQ interop unavailable: {reason}"
    if _ci():
        pytest.fail(
            message + " (CI is set: interop tests must run on CI)", pytrace=False
        )
    pytest.skip(message)


class _Slot:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None


class _Channel:
    """The driver process and its pipes.

    Kept apart from :class:`NodeBullMQ` so that the reader threads (which
    reference the channel) never keep the public handle alive: dropping the
    last reference to a NodeBullMQ still reaps its process.
    """

    def __init__(self, argv, echo: bool):
        # _lock guards ids/pending/state, _write_lock serialises stdin writes
        # and _tail_lock the stderr tail.  None is held while blocking on I/O
        # that the reader threads need, so a full pipe cannot deadlock us.
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._tail_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Slot] = {}
        self._tail: collections.deque[str] = collections.deque(maxlen=200)
        self._echo = echo
        self.dead: str | None = None
        self.proc = subprocess.Popen(
            argv,
            cwd=str(INTEROP_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        pid = self.proc.pid
        self._err_reader = threading.Thread(
            target=self._read_stderr, name=f"node-driver-{pid}-stderr", daemon=True
        )
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"node-driver-{pid}-stdout", daemon=True
        )
        self._err_reader.start()
        self._reader.start()

    # -- requests --------------------------------------------------------

    def request(self, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        slot = _Slot()
        with self._lock:
            dead = self.dead
            if dead is None:
                request_id = next(self._ids)
                self._pending[request_id] = slot
        if dead is not None:
            raise NodeDriverDied(self.death_message(dead, op))
        request = dict(args)
        request["id"] = request_id
        request["op"] = op
        line = (json.dumps(request, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            with self._write_lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise NodeDriverDied(
                self.death_message(f"writing to the driver failed: {exc}", op)
            ) from exc

        if not slot.event.wait(timeout):
            with self._lock:
                self._pending.pop(request_id, None)
            if slot.reply is None:
                raise NodeCallTimeout(
                    f"Node driver op {op!r} (id {request_id}) got no reply within {timeout:.1f} s\n"
                    f"--- driver stderr (tail) ---\n{self.stderr_tail()}"
                )
        reply = slot.reply
        assert reply is not None
        if reply.get("__dead__"):
            raise NodeDriverDied(self.death_message(reply["reason"], op))
        return reply

    # -- diagnostics -----------------------------------------------------

    def stderr_tail(self, lines: int = 40) -> str:
        with self._tail_lock:
            tail = list(self._tail)[-lines:]
        return "\n".join(tail)

    def death_message(self, reason: str, op: str | None = None) -> str:
        where = f" during op {op!r}" if op else ""
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        return (
            f"Node driver (pid {self.proc.pid}) is gone{where}: {reason}; "
            f"exit code {code}\n"
            f"--- driver stderr (tail) ---\n{self.stderr_tail()}"
        )

    def _note(self, line: str) -> None:
        with self._tail_lock:
            self._tail.append(line)
        if self._echo:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"[node] {line}\n")

    # -- reader threads --------------------------------------------------

    def fail_pending(self, reason: str) -> None:
        with self._lock:
            if self.dead is None:
                self.dead = reason
            pending = list(self._pending.values())
            self._pending.clear()
        for slot in pending:
            slot.reply = {"__dead__": True, "reason": reason}
            slot.event.set()

    def _read_stdout(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    reply = json.loads(text)
                except ValueError:
                    self._note(f"[non-JSON stdout] {text[:500]}")
                    continue
                if not isinstance(reply, dict):
                    self._note(f"[unexpected stdout] {text[:500]}")
                    continue
                with self._lock:
                    slot = self._pending.pop(reply.get("id"), None)
                if slot is None:
                    # Late reply to a timed-out call: keep it for debugging.
                    self._note(f"[unmatched reply] {text[:500]}")
                    continue
                slot.reply = reply
                slot.event.set()
        except (OSError, ValueError):
            pass
        finally:
            # Let the stderr reader catch up so death messages have context.
            self._err_reader.join(timeout=1)
            self.fail_pending("driver stdout closed")

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                self._note(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    # -- shutdown --------------------------------------------------------

    def close_stdin(self, wait: float = 5.0) -> None:
        # stdin EOF makes the driver shut down by itself.  Don't wait forever
        # for a writer stuck on a full pipe: the caller escalates to signals.
        if not self._write_lock.acquire(timeout=wait):
            return
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        finally:
            self._write_lock.release()

    def stop(self, grace: float) -> None:
        """Close stdin, wait ``grace`` s, then SIGTERM, then SIGKILL; always reap."""
        proc = self.proc
        try:
            if proc.poll() is None:
                self.close_stdin()
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            else:
                self.close_stdin(wait=0.1)
        finally:
            self._reader.join(timeout=5)
            self._err_reader.join(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass
            self.fail_pending("driver closed")


def _abandon(channel: _Channel) -> None:
    """weakref finalizer of NodeBullMQ (also runs at interpreter exit)."""
    with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
        channel.stop(grace=3.0)


class NodeBullMQ:
    """Handle on a running ``node driver.js`` process.

    >>> with NodeBullMQ("redis://127.0.0.1:6391") as node:
    ...     job_id = node.call("add", queue="q", name="n", data={})["id"]
    """

    def __init__(
        self,
        redis_url: str,
        major: int = 6,
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        startup_timeout: float = 30.0,
        echo_stderr: bool | None = None,
    ):
        reason = node_unavailable_reason(major)
        if reason is not None:
            raise RuntimeError(f"cannot start the Node driver: {reason}")
        self.redis_url = redis_url
        self.major = major
        self.timeout = timeout
        if echo_stderr is None:
            echo_stderr = bool(os.environ.get("BULLMQ_SYNC_INTEROP_ECHO"))
        self._close_lock = threading.Lock()
        self._closed = False
        self._chan = _Channel(
            [node_executable(), str(DRIVER), "--url", redis_url, "--major", str(major)],
            echo_stderr,
        )
        self._finalizer = weakref.finalize(self, _abandon, self._chan)
        try:
            #: {"major", "version", "node"} as reported by the driver.
            self.info = self.call("ping", timeout=startup_timeout)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> NodeBullMQ:  # noqa: PYI034 (py3.10: no typing.Self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("alive" if self.alive else "dead")
        return f"<NodeBullMQ major={self.major} pid={self.pid} {state}>"

    @property
    def pid(self) -> int:
        return self._chan.proc.pid

    @property
    def alive(self) -> bool:
        return self._chan.proc.poll() is None and self._chan.dead is None

    @property
    def returncode(self) -> int | None:
        return self._chan.proc.poll()

    def stderr_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the driver wrote to stderr."""
        return self._chan.stderr_tail(lines)

    def call(self, op: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run ``op`` in the driver and return its result.

        Keyword arguments are the op's arguments (``timeout`` is reserved for
        this method).  ``timeout`` (seconds) bounds the wait for the reply; it
        defaults to the instance timeout (30 s), extended to the op's own
        ``timeoutMs`` + 30 s when that is larger.  Raises NodeBullMQError for
        error replies, NodeCallTimeout on timeout (the driver keeps running),
        NodeDriverDied if the driver is gone or closed.
        """
        if self._closed:
            raise NodeDriverDied("this NodeBullMQ is closed")
        if timeout is None:
            timeout = self.timeout
            op_timeout_ms = kwargs.get("timeoutMs")
            if isinstance(op_timeout_ms, (int, float)):
                timeout = max(timeout, op_timeout_ms / 1000.0 + 30.0)
        reply = self._chan.request(op, kwargs, timeout)
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise NodeBullMQError(
            error.get("name") or "Error", error.get("message") or "", error.get("code")
        )

    def close(self, timeout: float = 15.0) -> None:
        """Ask the driver to close its BullMQ objects and exit; kill it if it won't.

        Idempotent; always reaps the process.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        chan = self._chan
        try:
            if chan.proc.poll() is None and chan.dead is None:
                try:
                    chan.request("close", {}, timeout)
                except (NodeDriverDied, NodeCallTimeout):
                    pass
        finally:
            chan.stop(grace=timeout)
            self._finalizer.detach()


def wait_until(
    predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"
):
    """Poll ``predicate`` until it returns a truthy value (returned) or time out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
