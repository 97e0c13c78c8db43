"""One socket that many threads pipeline script calls on, as a Node worker's ioredis does.

A caller writes its call at once (under a write lock) and waits; one reader thread reads the
replies in order and hands each to its caller. Nothing waits for a batch to fill: when Redis
is idle each call is read on its own; when it is busy it finds several calls in one socket
read and answers them in one write, saving a pair of system calls per call on both sides.
Replies are decoded by the parser (in C with hiredis), not walked afterwards.

Each call keeps ``Connection.run_script``'s guarantees: the outcome TTL and send window,
retries with backoff on transient failures (a failed socket fails every call in flight; each
is sent again on a new socket and its outcome slot makes the repeat exactly-once), NOSCRIPT
recovery, typed errors. Single-node connections only (a cluster routes calls by slot).
"""

from __future__ import annotations

import collections
import os
import socket as _socket
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis

from . import connection as _connection
from . import log
from .errors import ClientClosed, ScriptFailed, is_noscript, is_readonly

if TYPE_CHECKING:
    from .connection import Connection


class _Waiter:
    """One call in flight: its reply (or the socket's failure) and the lock its caller waits on."""

    __slots__ = ("ready", "reply")

    def __init__(self) -> None:
        self.reply: Any = None
        self.ready = threading.Lock()
        self.ready.acquire()


class _Pipe:
    """One connected socket, its writers' lock and its reader thread; dead after any failure.

    ``_write`` only orders the writes; the queue of callers and the failure are kept under
    ``_state``, so failing the pipe never waits for a write in progress (the shutdown makes
    that write fail). Writes are bounded by the socket timeout; the reader's reads too, and
    it just reads again when one times out (callers keep their own deadlines).
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self._client = client  # keeps the socket's pool alive
        self.socket: Any = client.connection_pool.get_connection()
        self.pid = os.getpid()
        self._write = threading.Lock()
        self._state = threading.Lock()
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self.failure: BaseException | None = None
        threading.Thread(target=self._read_replies, name=name, daemon=True).start()

    def send(self, packed: bytes) -> _Waiter:
        waiter = _Waiter()
        with self._write:
            with self._state:
                if self.failure is not None:
                    raise _failed(self.failure)
                self._waiting.append(waiter)
            try:
                self.socket._sock.sendall(packed)
            except (OSError, AttributeError) as exc:  # AttributeError: disconnected meanwhile
                failure: BaseException = exc
            else:
                return waiter
        self.fail(failure)
        if isinstance(self.failure, ClientClosed):  # close() shut the socket mid-write
            raise self.failure
        raise redis.exceptions.ConnectionError(f"send failed: {failure}")

    def _read_replies(self) -> None:
        try:
            while True:
                try:
                    reply = self.socket.read_response(disconnect_on_error=False)
                except redis.exceptions.ResponseError as exc:
                    reply = exc
                except redis.exceptions.TimeoutError:
                    if self.failure is not None:
                        return
                    continue  # idle, or a slow reply: its caller's own deadline decides
                except BaseException as exc:  # noqa: BLE001 - the socket is dead: fail callers
                    self.fail(exc)
                    return
                with self._state:
                    waiter = self._waiting.popleft() if self._waiting else None
                if waiter is None:  # a reply nobody asked for: the stream is out of step
                    self.fail(redis.exceptions.ConnectionError("unexpected reply"))
                    return
                waiter.reply = reply
                waiter.ready.release()
        finally:
            self.socket.disconnect()

    def fail(self, exc: BaseException) -> None:
        """Mark the pipe dead, wake every caller in flight with the failure (``ClientClosed``
        as it is, anything else as a transient ConnectionError), shut the socket down."""
        with self._state:
            first = self.failure is None
            if first:
                self.failure = exc
            waiting = list(self._waiting)
            self._waiting.clear()
        error = _failed(exc)
        for waiter in waiting:
            waiter.reply = error
            waiter.ready.release()
        if first:
            sock = self.socket._sock
            if sock is not None:
                try:
                    sock.shutdown(_socket.SHUT_RDWR)  # ends a blocked read or write at once
                except OSError:
                    pass


def _failed(exc: BaseException) -> BaseException:
    if isinstance(exc, ClientClosed):
        return exc
    return redis.exceptions.ConnectionError(f"pipelined socket failed: {exc}")


_INSTANCES: weakref.WeakSet[PipelinedScripts] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for instance in list(_INSTANCES):
        instance._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


def supported(connection: Connection) -> bool:
    """True when ``connection``'s calls can share one socket: a single server (a cluster
    routes calls by slot) whose replies are UTF-8 (what the pipe packs and decodes)."""
    encoding = connection.pool.connection_kwargs.get("encoding", "utf-8")
    return connection.single_node and str(encoding).replace("_", "-").lower() in ("utf-8", "utf8")


class PipelinedScripts:
    """``call(name, keys, args)`` does what ``Connection.run_script`` does, on one socket
    shared by every calling thread. ``close()`` ends it: calls in flight and later calls
    raise ``ClientClosed``."""

    def __init__(self, connection: Connection, *, label: str = "bullmq-sync-replies") -> None:
        self._connection = connection
        self._label = label
        self._timeout: float | None = connection.pool.connection_kwargs.get("socket_timeout")
        self._lock = threading.Lock()
        self._pipe: _Pipe | None = None
        self._closed = False
        _INSTANCES.add(self)

    def call(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._connection._scripts.get(name)
        args, guard = self._connection._guarded(args)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)

        def attempt() -> Any:
            reply = self._round_trip(guard, command)
            if isinstance(reply, redis.exceptions.ResponseError) and is_noscript(reply):
                log.script_reloaded(name)
                self._connection.execute("SCRIPT", "LOAD", script.source)
                reply = self._round_trip(guard, command)
            if isinstance(reply, redis.exceptions.ResponseError):
                raise ScriptFailed(f"{name}: {reply}", script=name)
            if isinstance(reply, BaseException):  # the socket failed, or close()
                raise reply
            return reply

        return self._connection._with_retry(attempt)

    def _round_trip(self, guard: Callable[[Any], Any], command: tuple[Any, ...]) -> Any:
        pipe = self._current()
        packed = _pack(pipe.socket, command)
        guard(command)
        waiter = pipe.send(packed)
        if not waiter.ready.acquire(timeout=-1 if self._timeout is None else self._timeout):
            error = redis.exceptions.TimeoutError(f"no reply within {self._timeout} s")
            pipe.fail(error)
            raise error
        reply = waiter.reply
        if isinstance(reply, redis.exceptions.ResponseError) and is_readonly(reply):
            # A replica now (failover): the next attempt reconnects, perhaps elsewhere.
            pipe.fail(reply)
            raise reply
        return reply

    def _current(self) -> _Pipe:
        with self._lock:
            if self._closed:
                raise ClientClosed("the worker's pipelined socket is closed")
            pipe = self._pipe
            if pipe is None or pipe.failure is not None:
                # The connect and handshake are bounded by the socket timeout like any call.
                client = self._connection.dedicated(socket_timeout=self._timeout)
                # The parser decodes (in C with hiredis) as _decode would, "replace" included.
                client.connection_pool.connection_kwargs.update(
                    decode_responses=True, encoding_errors="replace"
                )
                pipe = self._pipe = _Pipe(client, self._label)
            return pipe

    def _forget_parent(self) -> None:
        """In a forked child: the parent's socket and lock are the parent's; start afresh."""
        self._lock = threading.Lock()
        self._pipe = None

    def close(self) -> None:
        """Fail the calls in flight with ``ClientClosed`` and close the socket."""
        with self._lock:
            self._closed = True
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.fail(ClientClosed("the worker's pipelined socket was closed"))


def _pack(redis_socket: Any, command: tuple[Any, ...]) -> bytes:
    try:
        if _connection._hiredis_pack is not None:
            return _connection._hiredis_pack(command)
        return b"".join(redis_socket.pack_command(*command))
    except UnicodeEncodeError as exc:
        raise _connection.unencodable(exc) from None
