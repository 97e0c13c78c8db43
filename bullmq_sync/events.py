"""Reading a queue's event stream (``<prefix>:<queue>:events``), as Node's ``QueueEvents`` does.

``QueueEvents`` owns one dedicated (unpooled) Redis connection for its blocking ``XREAD``.
Iterate events in the calling thread with ``iter()``, or register callbacks with ``on()`` and
run them on a background thread with ``start()``. ``close()`` stops both promptly: it asks
Redis to unblock the pending read (``CLIENT UNBLOCK``) instead of waiting for its timeout.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import log, node_args
from .connection import BlockingReader, Connection
from .errors import (
    BullMQSyncError,
    ClientClosed,
    InvalidArgument,
)
from .keys import QueueKeys
from .workers_list import queue_events_client_name

if TYPE_CHECKING:
    from .queue import ConnectionLike  # a type alias: annotations only

EventCallback = Callable[["QueueEvent"], object]
ErrorCallback = Callable[[BaseException], object]

_READ_COUNT = 1000
"""Most entries fetched by one XREAD."""


def _stream_id(value: object) -> str:
    text = str(value)
    if text in ("$", "0"):
        return text
    head, _, tail = text.partition("-")
    if not head.isdigit() or (tail and not tail.isdigit()):
        raise InvalidArgument(
            f"last_event_id must be '$', '0' or a stream id like '1700-0', got {value!r}"
        )
    return text


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class QueueEvent:
    """One entry of a queue's event stream: ``QueueEvent("1700-0", "completed", "42", {...})``.

    ``fields`` holds the entry's fields except ``event`` (so ``jobId`` is there too), with the
    values Node's ``QueueEvents`` would hand to a listener: ``progress.data`` and
    ``completed.returnvalue`` JSON-parsed, ``delayed.delay`` an int; everything else a string.
    """

    id: str
    name: str
    job_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry_id: str, flat: list[Any] | Mapping[Any, Any]) -> QueueEvent:
        """Build an event from an XREAD entry (its id and its flat field list)."""
        if isinstance(flat, Mapping):
            pairs = [(_text(k), _text(v)) for k, v in flat.items()]
        else:
            texts = [_text(v) for v in flat]
            pairs = list(zip(texts[::2], texts[1::2], strict=False))
        fields: dict[str, Any] = dict(pairs)
        name = str(fields.pop("event", ""))
        if name == "progress" and "data" in fields:
            fields["data"] = _parse_json(fields["data"])
        elif name == "completed" and "returnvalue" in fields:
            fields["returnvalue"] = _parse_json(fields["returnvalue"])
        elif name == "delayed" and "delay" in fields:
            try:
                fields["delay"] = int(float(fields["delay"] or 0))
            except ValueError:
                pass
        job_id = fields.get("jobId")
        return cls(id=_text(entry_id), name=name, job_id=job_id, fields=fields)

    @property
    def timestamp(self) -> int:
        """When Redis stored the entry (milliseconds since the epoch, from its id)."""
        return int(self.id.partition("-")[0])

    @property
    def prev(self) -> str | None:
        """The state the job left (``prev`` field), if the event has one."""
        value = self.fields.get("prev")
        return None if value is None else str(value)

    def __getitem__(self, item: str) -> Any:
        return self.fields[item]

    def get(self, item: str, default: Any = None) -> Any:
        """A field's value, or ``default``."""
        return self.fields.get(item, default)


class QueueEvents:
    """A blocking reader of one queue's events: ``for event in QueueEvents("q").iter(): ...``.

    ``last_event_id="$"`` means "events written after this object was created"; pass a stream
    id (``"0"`` for the whole stream, or a saved ``last_event_id``) to resume. ``block_ms`` is
    how long one XREAD blocks (Node's ``blockingTimeout``). BullMQ's option dict works too:
    ``QueueEvents("q", {"connection": url, "prefix": "app", "lastEventId": "0"})``.
    """

    def __init__(
        self,
        queue_name: str,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str = "bull",
        last_event_id: str = "$",
        block_ms: int = 10000,
        autorun: bool = True,
    ) -> None:
        settings = node_args.parse("QueueEvents", opts)
        if connection is None:
            connection = settings.get("connection")
        prefix = settings.get("prefix", prefix)
        last_event_id = _stream_id(settings.get("last_event_id", last_event_id))
        block_ms = settings.get("block_ms", block_ms)
        if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 1:
            raise InvalidArgument(
                f"block_ms must be a positive int of milliseconds, got {block_ms!r}"
            )
        autorun = settings.get("autorun", autorun)
        if not isinstance(autorun, bool):
            raise InvalidArgument(f"autorun must be a bool, got {autorun!r}")
        self.autorun = autorun
        """Start the callback thread with the first ``on()`` (Node's ``autorun``, default on)."""
        self.keys = QueueKeys(queue_name, prefix=prefix)
        self.block_ms = block_ms
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self._closing = threading.Event()
        self._closed = False
        self._state_lock = threading.Lock()
        self._read_lock = threading.Lock()  # held by the one running iterator
        self._reader: BlockingReader | None = None
        self._buffer: collections.deque[QueueEvent] = collections.deque()
        self._listeners: dict[str, list[EventCallback]] = {}
        self._error_listeners: list[ErrorCallback] = []
        self._thread: threading.Thread | None = None
        if last_event_id == "$":
            try:
                last_event_id = self._newest_id()
            except BaseException:
                if self._owns_connection:
                    self.connection.close()
                raise
        self._last_id = last_event_id
        self.last_event_id = last_event_id if last_event_id != "0" else "0-0"
        """The id of the last event handed out (save it to resume later)."""

    @property
    def name(self) -> str:
        return self.keys.name

    @property
    def qualified_name(self) -> str:
        """``<prefix>:<queue>`` (Node's ``qualifiedName``)."""
        return self.keys.qualified_name

    qualifiedName = qualified_name

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self.running else "idle")
        return f"<QueueEvents {self.keys.qualified_name!r} at {self.last_event_id} {state}>"

    def _newest_id(self) -> str:
        newest = self.connection.execute("XREVRANGE", self.keys.events, "+", "-", "COUNT", 1)
        return str(newest[0][0]) if newest else "0-0"

    # -- iterating ------------------------------------------------------------------------

    def iter(self, block: bool = True, timeout: float | None = None) -> Iterator[QueueEvent]:
        """Yield events in stream order.

        ``block=False`` yields what is already in the stream and stops. ``block=True`` waits
        for new events until ``close()``, or until ``timeout`` seconds have passed since the
        iteration began. One reader at a time: not while ``start()`` is running.
        """
        if timeout is not None and timeout < 0:
            raise InvalidArgument(f"timeout must be >= 0 seconds, got {timeout!r}")
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        return self._iterate(block, timeout)

    def __iter__(self) -> Iterator[QueueEvent]:
        return self.iter()

    def _iterate(self, block: bool, timeout: float | None) -> Iterator[QueueEvent]:
        if not self._read_lock.acquire(blocking=False):
            raise BullMQSyncError(f"{self!r} is already being read by another thread")
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._closing.is_set():
                if not self._buffer:
                    if block:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            return
                        wait_ms = (
                            self.block_ms
                            if remaining is None
                            else min(self.block_ms, max(1, int(remaining * 1000)))
                        )
                        self._fill(wait_ms)
                    else:
                        if not self._fill(None):
                            return
                    continue
                event = self._buffer.popleft()
                self.last_event_id = event.id
                yield event
        finally:
            self._read_lock.release()

    def _fill(self, block_ms: int | None) -> int:
        """One XREAD into the buffer; returns how many events arrived."""
        entries = self._xread(block_ms)
        for entry_id, flat in entries:
            self._last_id = _text(entry_id)
            self._buffer.append(QueueEvent.from_entry(entry_id, flat))
        return len(entries)

    def _xread(self, block_ms: int | None) -> list[Any]:
        """One XREAD (blocking when ``block_ms`` is set); [] when closing or nothing came."""
        with self._state_lock:
            if self._closing.is_set():
                return []
            if self._reader is None:
                self._reader = self.connection.blocking_reader(
                    self.keys.events,
                    socket_timeout=(block_ms or 0) / 1000 + self.connection.retry_budget,
                    client_name=queue_events_client_name(self.keys),
                )
            reader = self._reader
        args: list[Any] = ["XREAD", "COUNT", _READ_COUNT]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        reply = reader.call(*args, "STREAMS", self.keys.events, self._last_id)
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3: {stream: entries}
            return list(next(iter(reply.values()), []))
        return list(reply[0][1])  # RESP2: [[stream, entries]]

    # -- callbacks ------------------------------------------------------------------------

    def on(self, name: str, callback: EventCallback) -> EventCallback:
        """Call ``callback(event)`` for each ``name`` event; returns the callback.

        ``name`` is an event name (``"completed"``), ``"completed:42"`` for one job's,
        ``"*"`` for every event, or ``"error"`` (called with the exception when a read or a
        callback fails). Callbacks run on the ``start()`` thread, in stream order.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"event name must be a non-empty string, got {name!r}")
        if not callable(callback):
            raise InvalidArgument("callback must be callable")
        with self._state_lock:
            if name == "error":
                self._error_listeners.append(callback)  # type: ignore[arg-type]
            else:
                self._listeners.setdefault(name, []).append(callback)
        if self.autorun and name != "error" and not self._closed:
            self.start()
        return callback

    def off(self, name: str, callback: EventCallback) -> None:
        """Remove a callback registered with ``on``; no error if it was not registered."""
        with self._state_lock:
            bucket: list[Any] = (
                self._error_listeners if name == "error" else self._listeners.get(name, [])
            )
            if callback in bucket:
                bucket.remove(callback)

    def dispatch(self, event: QueueEvent) -> None:
        """Run the callbacks registered for ``event`` (what the ``start()`` thread does)."""
        with self._state_lock:
            callbacks = list(self._listeners.get(event.name, ()))
            if event.job_id is not None:
                callbacks += self._listeners.get(f"{event.name}:{event.job_id}", ())
            callbacks += self._listeners.get("*", ())
        for callback in callbacks:
            try:
                callback(event)
            except Exception as exc:  # noqa: BLE001 - a user callback must not stop the reader
                log.event(
                    "events.callback_failed",
                    level=logging.ERROR,
                    queue=self.name,
                    event_name=event.name,
                    job_id=event.job_id,
                    error=repr(exc),
                )
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        with self._state_lock:
            listeners = list(self._error_listeners)
        for listener in listeners:
            try:
                listener(exc)
            except Exception:  # noqa: BLE001 - an error listener failing has nowhere to go
                pass

    # -- the background thread ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the ``start()`` thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> QueueEvents:
        """Run registered callbacks on a daemon thread until ``close()``; returns self."""
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        with self._state_lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._thread = threading.Thread(
                target=self._run, name=f"bullmq-sync-events-{self.name}", daemon=True
            )
            # Started under the lock: a concurrent start() must see it alive, not start another.
            self._thread.start()
        return self

    run = start

    def _run(self) -> None:
        log.event("events.started", queue=self.name, last_event_id=self.last_event_id)
        while not self._closing.is_set():
            try:
                for event in self.iter(block=True):
                    self.dispatch(event)
            except BullMQSyncError as exc:
                if self._closing.is_set():
                    break
                log.event(
                    "events.read_failed", level=logging.WARNING, queue=self.name, error=str(exc)
                )
                self._report(exc)
                self._closing.wait(1.0)
        log.event("events.stopped", queue=self.name, last_event_id=self.last_event_id)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading (a blocked XREAD returns at once), join the thread. Idempotent."""
        if self._closed:
            return
        with self._state_lock:
            self._closing.set()
            reader = self._reader
        if reader is not None:
            reader.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if reader is not None:
            reader.close()
        self._closed = True
        if self._owns_connection:
            self.connection.close()

    def __enter__(self) -> QueueEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
