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

The ``process`` op runs a data-driven processor; see ``PROCESSOR_CONVENTIONS``.
"""

from __future__ import annotations

import collections
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
from typing import Any, Deque, Dict, Optional

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
        super().__init__(f"{name}: {message}" + (f" (code {code})" if code is not None else ""))
        self.name = name
        self.message = message
        self.code = code


class NodeDriverDied(RuntimeError):
    """The driver process exited (or could not be talked to)."""


class NodeCallTimeout(TimeoutError):
    """A driver call got no reply in time."""


def node_executable() -> Optional[str]:
    return shutil.which("node")


def node_unavailable_reason(major: int = 6) -> Optional[str]:
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
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: interop tests must run on CI)", pytrace=False)
    pytest.skip(message)


def _reap(proc: subprocess.Popen) -> None:
    """Finalizer: make sure the child is gone (no orphan, no zombie)."""
    if proc.poll() is not None:
        return
    try:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=3)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class _Slot:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: Optional[Dict[str, Any]] = None


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
        echo_stderr: Optional[bool] = None,
    ):
        reason = node_unavailable_reason(major)
        if reason is not None:
            raise RuntimeError(f"cannot start the Node driver: {reason}")
        self.redis_url = redis_url
        self.major = major
        self.timeout = timeout
        if echo_stderr is None:
            echo_stderr = bool(os.environ.get("BULLMQ_SYNC_INTEROP_ECHO"))
        self._echo = echo_stderr
        # _lock guards ids/pending/state, _write_lock serialises stdin writes and
        # _tail_lock the stderr tail; they are never held together for I/O,
        # so a reader thread can never block on a writer stuck on a full pipe.
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._tail_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: Dict[int, _Slot] = {}
        self._stderr_tail: Deque[str] = collections.deque(maxlen=200)
        self._dead: Optional[str] = None
        self._closed = False

        self._proc = subprocess.Popen(
            [node_executable(), str(DRIVER), "--url", redis_url, "--major", str(major)],
            cwd=str(INTEROP_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._finalizer = weakref.finalize(self, _reap, self._proc)
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"node-driver-{self._proc.pid}-stdout", daemon=True
        )
        self._err_reader = threading.Thread(
            target=self._read_stderr, name=f"node-driver-{self._proc.pid}-stderr", daemon=True
        )
        self._reader.start()
        self._err_reader.start()
        try:
            self.info = self.call("ping", timeout=startup_timeout)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------
    # context manager / lifecycle
    # ------------------------------------------------------------------

    def __enter__(self) -> "NodeBullMQ":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None and self._dead is None

    def stderr_tail(self, lines: int = 40) -> str:
        with self._tail_lock:
            tail = list(self._stderr_tail)[-lines:]
        return "\n".join(tail)

    def close(self, timeout: float = 15.0) -> None:
        """Ask the driver to close its BullMQ objects and exit; kill it if it won't."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        proc = self._proc
        try:
            if proc.poll() is None and self._dead is None:
                try:
                    self._call("close", timeout=timeout, args={})
                except (NodeBullMQError, NodeDriverDied, NodeCallTimeout, OSError):
                    pass
            # stdin EOF makes the driver shut down by itself.  Don't wait
            # forever for a writer stuck on a full pipe: terminate() follows.
            if self._write_lock.acquire(timeout=5):
                try:
                    if proc.stdin and not proc.stdin.closed:
                        proc.stdin.close()
                except OSError:
                    pass
                finally:
                    self._write_lock.release()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        finally:
            self._reader.join(timeout=5)
            self._err_reader.join(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass
            self._finalizer.detach()
            self._fail_pending("driver closed")

    # ------------------------------------------------------------------
    # calls
    # ------------------------------------------------------------------

    def call(self, op: str, *, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Run ``op`` in the driver and return its result.

        ``timeout`` (seconds) bounds the wait for the reply; it defaults to
        the instance timeout (30 s), extended by the op's own ``timeoutMs``.
        Raises NodeBullMQError for error replies, NodeCallTimeout on timeout,
        NodeDriverDied if the driver is gone.
        """
        if self._closed:
            raise NodeDriverDied("NodeBullMQ is closed")
        if timeout is None:
            timeout = self.timeout
            op_timeout_ms = kwargs.get("timeoutMs")
            if isinstance(op_timeout_ms, (int, float)):
                timeout = max(timeout, op_timeout_ms / 1000.0 + 30.0)
        return self._call(op, timeout=timeout, args=kwargs)

    def _call(self, op: str, *, timeout: float, args: Dict[str, Any]) -> Any:
        slot = _Slot()
        with self._lock:
            if self._dead is not None:
                raise NodeDriverDied(self._death_message(self._dead))
            request_id = next(self._ids)
            request = dict(args)
            request["id"] = request_id
            request["op"] = op
            line = json.dumps(request, separators=(",", ":")) + "\n"
            self._pending[request_id] = slot
        try:
            with self._write_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(line.encode("utf-8"))
                self._proc.stdin.flush()
        except (OSError, ValueError) as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise NodeDriverDied(self._death_message(f"writing to the driver failed: {exc}")) from exc

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
            raise NodeDriverDied(self._death_message(reply["reason"], op=op))
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        raise NodeBullMQError(
            error.get("name") or "Error", error.get("message") or "", error.get("code")
        )

    # ------------------------------------------------------------------
    # reader threads
    # ------------------------------------------------------------------

    def _death_message(self, reason: str, op: Optional[str] = None) -> str:
        code = self._proc.poll()
        where = f" during op {op!r}" if op else ""
        return (
            f"Node driver (pid {self._proc.pid}) is gone{where}: {reason}; exit code {code}\n"
            f"--- driver stderr (tail) ---\n{self.stderr_tail()}"
        )

    def _fail_pending(self, reason: str) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = reason
            pending = list(self._pending.values())
            self._pending.clear()
        for slot in pending:
            slot.reply = {"__dead__": True, "reason": reason}
            slot.event.set()

    def _read_stdout(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    reply = json.loads(text)
                except ValueError:
                    self._note_stderr(f"[non-JSON stdout] {text[:500]}")
                    continue
                if not isinstance(reply, dict):
                    self._note_stderr(f"[unexpected stdout] {text[:500]}")
                    continue
                with self._lock:
                    slot = self._pending.pop(reply.get("id"), None)
                if slot is None:
                    # Late reply to a timed-out call, or garbage: keep for debugging.
                    self._note_stderr(f"[unmatched reply] {text[:500]}")
                    continue
                slot.reply = reply
                slot.event.set()
        except (OSError, ValueError):
            pass
        finally:
            # Give the stderr reader a moment so the death message has context.
            self._err_reader.join(timeout=1)
            self._fail_pending("driver stdout closed")

    def _read_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                self._note_stderr(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def _note_stderr(self, line: str) -> None:
        with self._tail_lock:
            self._stderr_tail.append(line)
        if self._echo:
            try:
                sys.stderr.write(f"[node] {line}\n")
            except Exception:
                pass


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (returned) or time out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
