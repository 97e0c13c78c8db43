"""Taking jobs: lock tokens, ``fetchJob``, the marker wait, rate-limit waits and ``drained``.

One slot thread at a time fetches; when nothing is ready it blocks on ``BZPOPMIN <marker>``
on a dedicated connection, so Node producers wake it and our retries wake Node workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..attempt_calls import fetch_call, fetched, now_ms
from ..connection import BlockingReader
from ..errors import BullMQSyncError
from ..workers_list import worker_client_name

if TYPE_CHECKING:
    from ..attempt_calls import Settings
    from ..connection import Connection
    from ..job import Job
    from ..queue import Queue
    from .emitter import Emitter

MAX_BLOCK_SECONDS = 10.0
"""Redis-side ceiling of one BZPOPMIN wait, as BullMQ's ``maximumBlockTimeout``."""


class Fetcher:
    """Fetches locked jobs for the slots; tracks rate limits and the ``drained`` state."""

    def __init__(
        self,
        queue: Queue,
        connection: Connection,
        emitter: Emitter,
        calls: Settings,
        *,
        worker_id: str,
        drain_delay: float,
        maximum_rate_limit_delay: int,
        run_retry_delay: int,
        closing: threading.Event,
        paused: threading.Event,
        make_job: Callable[[str, dict[str, str]], Job],
    ) -> None:
        self._queue = queue
        self._connection = connection
        self._emitter = emitter
        self._worker_id = worker_id
        self._closing = closing
        self._paused = paused
        self._make_job = make_job
        self._calls = calls
        self._drain_delay = drain_delay
        self._max_limit_delay = maximum_rate_limit_delay
        self._retry_delay = run_retry_delay / 1000
        self._tokens = 0
        self._token_lock = threading.Lock()
        self.lock = threading.Lock()
        """Held by the one thread fetching or blocked on the marker."""
        self._blocker: BlockingReader | None = None
        self._reader_lock = threading.Lock()
        self._limit_until = 0.0
        self._drained = False
        self._drained_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        self._blocker = self._new_blocker()

    def _new_blocker(self) -> BlockingReader:
        return self._connection.blocking_reader(
            self._queue.keys.marker,
            socket_timeout=MAX_BLOCK_SECONDS + 5,
            client_name=worker_client_name(self._queue.keys, self._calls.name or None),
        )

    def marker_reader(self) -> BlockingReader | None:
        """The marker socket, opened on first use (manual processing); None once closing.
        ``interrupt()`` and ``close()`` reach it like the worker's own waits."""
        with self._reader_lock:
            if self._closing.is_set():
                return None
            if self._blocker is None:
                self._blocker = self._new_blocker()
            return self._blocker

    def interrupt(self) -> None:
        """Wake the thread blocked on the marker (closing)."""
        if self._blocker is not None:
            self._blocker.interrupt()

    def wake(self) -> None:
        """End a pending marker wait now, with a fresh blocking socket for the next one."""
        old = self._blocker
        if old is None or self._closing.is_set():
            return
        self._blocker = self._new_blocker()
        old.close()

    def close(self) -> None:
        if self._blocker is not None:
            self._blocker.close()

    # -- tokens, rate limits, drained ---------------------------------------------------------

    def next_token(self) -> str:
        with self._token_lock:
            self._tokens += 1
            return f"{self._worker_id}:{self._tokens}"

    def limit_for(self, ttl_ms: int) -> None:
        """A processor hit a rate limit: fetch nothing for ``ttl_ms`` (capped)."""
        wait = min(ttl_ms, self._max_limit_delay)
        self._limit_until = now_ms() + wait if wait > 0 else 0.0

    def _rate_limit_wait(self) -> bool:
        left = self._limit_until - now_ms()
        if left <= 0:
            return False
        self._closing.wait(min(left / 1000, 0.25))
        return True

    def note(self, got_job: bool) -> None:
        """Record a fetch's result; emits ``drained`` once when the queue ran dry (as Node)."""
        if got_job:
            self._drained = False
            return
        with self._drained_lock:
            if self._drained:
                return
            self._drained = True
        self._emitter.emit("drained")

    def job_from_reply(self, reply: Any) -> Job | None:
        job = fetched(reply)
        return None if job is None else self._make_job(*job)

    # -- fetching ------------------------------------------------------------------------------

    def acquire(self, hold: Callable[[int], None]) -> tuple[Job, str] | None:
        """Wait for a job; one thread at a time fetches or blocks on the marker.

        ``hold(1)`` is called before the fetch lock is released, so whoever waits for the
        lock and then for idle slots never misses a job just fetched.
        """
        while not self._closing.is_set():
            if not self.lock.acquire(timeout=0.25):
                continue
            try:
                work = self._fetch_or_block()
                if work is not None:
                    hold(1)
                return work
            finally:
                self.lock.release()
        return None

    def fetch_once(self, token: str) -> Any:
        """One ``fetchJob`` call with ``token`` (the raw reply)."""
        return self._connection.run_script("fetchJob", *fetch_call(self._queue, token, self._calls))

    def _fetch_or_block(self) -> tuple[Job, str] | None:
        while not self._closing.is_set():
            if self._paused.is_set():
                return None
            if self._rate_limit_wait():
                continue
            token = self.next_token()
            try:
                reply = self.fetch_once(token)
            except BullMQSyncError as exc:
                self._emitter.error(exc)
                self._closing.wait(self._retry_delay)
                continue
            job = self.job_from_reply(reply)
            self.note(job is not None)
            if job is not None:
                return job, token
            rate_limited, due = int(reply[2]), float(reply[3])
            if rate_limited > 0:
                self._closing.wait(min(rate_limited, self._max_limit_delay) / 1000)
                continue
            block = min(self._drain_delay, MAX_BLOCK_SECONDS)
            if due > 0:
                block = min(max((due - now_ms()) / 1000, 0.001), MAX_BLOCK_SECONDS)
            self._wait_for_marker(block)
        return None

    def _wait_for_marker(self, seconds: float) -> None:
        blocker = self._blocker
        assert blocker is not None
        try:
            blocker.call("BZPOPMIN", self._queue.keys.marker, seconds)
        except BullMQSyncError as exc:
            if self._closing.is_set():
                return
            self._emitter.error(exc)
            self._closing.wait(0.5)
