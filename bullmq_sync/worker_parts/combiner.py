"""One round trip for the finishing calls of several slots at once.

Node BullMQ's client (ioredis) sends the commands issued in one event-loop tick together, so
at concurrency 8 the Redis server reads about one socket message per two jobs; one script
call per socket message costs the server measurably more per job. Here the first slot that
finishes a job becomes the sender: it takes every finishing call queued meanwhile and sends
them as one pipeline (each call still one atomic script, with its own outcome key), then
hands the replies back. Alone (concurrency 1, or a quiet queue) a call goes out at once, as
before.

If the batch fails as a whole, each call is sent again on its own: a repeated call is safe
(the outcome key replays it), and each caller gets its own reply or its own error.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..connection import Connection


class _Call:
    __slots__ = ("args", "done", "error", "keys", "lead", "reply")

    def __init__(self, keys: Sequence[str], args: Sequence[Any]) -> None:
        self.keys = keys
        self.args = args
        self.done = threading.Event()
        self.lead = False
        self.reply: Any = None
        self.error: BaseException | None = None


class ScriptCombiner:
    """Runs ``script`` for concurrent callers, batching whatever queued while one was sent."""

    def __init__(self, connection: Connection, script: str, max_batch: int = 64) -> None:
        self._connection = connection
        self._script = script
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queued: list[_Call] = []
        self._sending = False
        self.batches = 0
        self.calls = 0

    def call(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        call = _Call(keys, args)
        with self._lock:
            self._queued.append(call)
            call.lead = not self._sending
            self._sending = True
        if not call.lead:
            call.done.wait()
        if call.lead:  # first in line, or handed the turn by the previous sender
            call.done.clear()
            self._send_one_batch()
        if call.error is not None:
            raise call.error
        return call.reply

    def _send_one_batch(self) -> None:
        """Send what is queued (this caller's call first), then hand the turn to the oldest
        call queued meanwhile, so no slot keeps sending for the others."""
        with self._lock:
            batch = self._queued[: self._max_batch]
            del self._queued[: self._max_batch]
        try:
            self._send(batch)
        finally:
            with self._lock:
                following = self._queued[0] if self._queued else None
                if following is None:
                    self._sending = False
                else:
                    following.lead = True
            if following is not None:
                following.done.set()

    def _send(self, batch: list[_Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        if len(batch) == 1:
            self._one(batch[0])
            return
        try:
            replies = self._connection.run_script_many(
                self._script, [(call.keys, call.args) for call in batch]
            )
        except BaseException:  # noqa: BLE001 - each call again on its own (outcome keys replay)
            for call in batch:
                self._one(call)
            return
        for call, reply in zip(batch, replies, strict=True):
            call.reply = reply
            call.done.set()

    def _one(self, call: _Call) -> None:
        try:
            call.reply = self._connection.run_script(self._script, call.keys, call.args)
        except BaseException as exc:  # noqa: BLE001 - handed to its caller
            call.error = exc
        call.done.set()
