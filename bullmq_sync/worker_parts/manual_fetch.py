"""``Worker.get_next_job``: taking jobs by hand, blocking on the queue's marker.

Each round is one ``fetchJob`` call (the fetcher's, with the caller's token). With nothing
ready and ``block``, one thread of a worker blocks on the marker (``BZPOPMIN``, on the
fetcher's marker socket) at a time, the others wait for its wake-up; a rate limit is waited
out. All within ``drain_delay`` seconds. See ``manual.py`` for the moves that finish the job.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING

from .. import manual
from ..attempt_calls import now_ms
from ..errors import InvalidArgument
from ..job import Job
from .fetcher import MAX_BLOCK_SECONDS

if TYPE_CHECKING:
    from ..worker import Worker


class _MarkerWait:
    """One thread of a worker blocks on the marker; the others wait for its wake-up."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._blocking = False
        self._round = 0

    def wait(self, worker: Worker, seconds: float) -> None:
        with self._cond:
            if self._blocking:
                seen = self._round
                self._cond.wait_for(lambda: self._round != seen, seconds)
                return
            self._blocking = True
        try:
            reader = worker._fetcher.marker_reader()
            if reader is not None:
                reader.call("BZPOPMIN", worker.queue.keys.marker, round(max(seconds, 0.001), 3))
        finally:
            with self._cond:
                self._blocking = False
                self._round += 1
                self._cond.notify_all()


_WAITS: weakref.WeakKeyDictionary[Worker, _MarkerWait] = weakref.WeakKeyDictionary()
_WAITS_LOCK = threading.Lock()


def _marker_wait(worker: Worker) -> _MarkerWait:
    with _WAITS_LOCK:
        wait = _WAITS.get(worker)
        if wait is None:
            wait = _WAITS[worker] = _MarkerWait()
        return wait


def _rest(worker: Worker, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early once the worker closes or pauses."""
    end = time.monotonic() + seconds
    while not (worker.closing or worker.is_paused()):
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def get_next_job(worker: Worker, token: object, block: object = True) -> Job | None:
    """BullMQ's ``Worker.getNextJob``: the next job, locked with ``token``; None if none came."""
    lock = manual.check_token(token)
    blocking = manual.block_option(block)
    if worker.running:
        raise InvalidArgument(
            "get_next_job takes jobs by hand: use a Worker that is not running a processor "
            "(Worker(name, None))"
        )
    queue = worker.queue
    deadline = time.monotonic() + worker.drain_delay
    while not (worker.closing or worker.is_paused()):
        reply = worker._fetcher.fetch_once(lock)
        job = Job.from_fetch(queue, manual.taken(queue, reply, worker.id), lock, worker)
        if job is not None or not blocking:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        limited, due = int(reply[2]), int(reply[3])
        if limited > 0:
            _rest(worker, min(limited / 1000, left))
            continue
        wait = min(left, MAX_BLOCK_SECONDS)
        if due > 0:
            wait = min(wait, max((due - now_ms()) / 1000, 0.001))
        _marker_wait(worker).wait(worker, wait)
    return None
