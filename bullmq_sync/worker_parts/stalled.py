"""The stalled-job check: jobs whose lock expired go back to wait, or fail past the limit."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .. import log

if TYPE_CHECKING:
    from ..connection import Connection
    from ..queue import Queue
    from .emitter import Emitter


class StalledChecker:
    """Runs ``stalledCheck`` every ``interval_ms`` (the script itself skips a check when any
    worker ran one this interval, so a fleet checks once per interval)."""

    def __init__(
        self,
        queue: Queue,
        connection: Connection,
        emitter: Emitter,
        *,
        max_stalled_count: int,
        interval_ms: int,
    ) -> None:
        self._queue = queue
        self._connection = connection
        self._emitter = emitter
        self._max_stalled_count = max_stalled_count
        self._interval_ms = interval_ms

    def check(self) -> list[str]:
        keys = self._queue.keys
        moved = self._connection.run_script(
            "stalledCheck",
            (
                keys.stalled,
                keys.wait,
                keys.active,
                keys.stalled_check,
                keys.meta,
                keys.marker,
                keys.events,
                keys.repeat,
            ),
            (self._max_stalled_count, keys.base, int(time.time() * 1000), self._interval_ms),
        )
        ids = [str(job_id) for job_id in moved or []]
        for job_id in ids:
            log.transition(
                "job.stalled",
                queue=self._queue.name,
                job_id=job_id,
                from_state="active",
                to_state="waiting",
            )
            self._emitter.emit("stalled", job_id)
        return ids

    def loop(self, stop: threading.Event, paused: threading.Event) -> None:
        period = self._interval_ms / 1000
        while not stop.is_set():
            if paused.is_set():  # BullMQ stops its checker while the worker is paused
                stop.wait(min(period, 0.5))
                continue
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - keep checking
                self._emitter.error(exc)
            if stop.wait(period):
                return
