"""The code a child process of ``Worker(..., processes=N)`` runs (started with ``spawn``).

The child imports the processor by path, then runs one job at a time as the parent sends
them over a pipe. It never talks to Redis: ``job.update_progress`` and ``job.log`` are
messages that the parent carries out (and answers); a cancellation arrives as a message
and sets the job's ``CancelSignal``. Messages, parent -> child: ``("job", id, fields,
token, queue, prefix)``, ``("cancel", reason)``, ``("reply", ok, value)``, ``("stop",)``;
child -> parent: ``("progress", value)``, ``("log", row)``, ``("done", json)``,
``("error", type_name, message, traceback, kind)``.
"""

from __future__ import annotations

import importlib
import json
import queue as queue_module
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any

from ..errors import (
    RATE_LIMIT_MESSAGE,
    DelayedError,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
    WaitingError,
)
from ..job import Job
from ..keys import QueueKeys
from .signals import CancelSignal, processor_arguments

ERROR_KINDS: tuple[tuple[str, type[BaseException]], ...] = (
    ("unrecoverable", UnrecoverableError),
    ("rate_limit", RateLimitError),
    ("delayed", DelayedError),
    ("waiting_children", WaitingChildrenError),
    ("waiting", WaitingError),
)
"""Errors whose class the parent rebuilds (they steer what the worker does with the job)."""


class ChildProcessorError(RuntimeError):
    """A message sent from the child was refused by the parent (e.g. a bad progress value)."""


def import_processor(path: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module_name, _, attr = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target  # type: ignore[no-any-return]


class _ChildQueue:
    """What a job in a child knows of its queue: the name and the key layout."""

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self.prefix = prefix
        self.keys = QueueKeys(name, prefix=prefix)


class ChildJob(Job):
    """A job inside a child: its fields, and ``update_progress`` / ``log`` through the parent."""

    channel: _Channel | None = None

    def update_progress(self, progress: Any) -> None:
        assert self.channel is not None
        self.channel.request(("progress", progress))
        self.progress = progress

    updateProgress = update_progress

    def log(self, row: str) -> int:
        assert self.channel is not None
        return int(self.channel.request(("log", row)))


class _Channel:
    """The child's end of the pipe: one reader thread; replies to requests come in order."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._send_lock = threading.Lock()
        self.jobs: queue_module.Queue[tuple[Any, ...] | None] = queue_module.Queue()
        self._replies: queue_module.Queue[tuple[bool, Any]] = queue_module.Queue()
        self.signal: CancelSignal | None = None

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._pipe.send(message)

    def request(self, message: tuple[Any, ...]) -> Any:
        self.send(message)
        ok, value = self._replies.get()
        if not ok:
            raise ChildProcessorError(value)
        return value

    def read_forever(self) -> None:
        try:
            while True:
                message = self._pipe.recv()
                kind = message[0]
                if kind == "job":
                    self.jobs.put(message)
                elif kind == "cancel":
                    if self.signal is not None:
                        self.signal.cancel(message[1])
                elif kind == "reply":
                    self._replies.put((message[1], message[2]))
                elif kind == "stop":
                    break
        except (EOFError, OSError):
            pass
        self.jobs.put(None)


def _error_message(error: BaseException) -> tuple[str, str, str, str, str]:
    kind = "other"
    for name, cls in ERROR_KINDS:
        if isinstance(error, cls):
            kind = name
            break
    if kind == "other" and str(error) == RATE_LIMIT_MESSAGE:
        kind = "rate_limit"
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return ("error", type(error).__name__, str(error), stack, kind)


def main(pipe: Pipe, path: str, initializer: str | None = None) -> None:
    """Entry point of a child: run the initializer, import the processor, run jobs until told
    to stop."""
    channel = _Channel(pipe)
    try:
        if initializer is not None:
            import_processor(initializer)()
        processor = import_processor(path)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the job
        pipe.send(("fatal", f"cannot import processor {path!r}: {type(exc).__name__}: {exc}"))
        return
    positional, by_name = processor_arguments(processor)
    reader = threading.Thread(target=channel.read_forever, name="bullmq-sync-child", daemon=True)
    reader.start()
    pipe.send(("ready",))
    while True:
        message = channel.jobs.get()
        if message is None:
            return
        _, job_id, fields, token, queue_name, prefix = message
        job = ChildJob.from_hash(_ChildQueue(queue_name, prefix), job_id, fields)  # type: ignore[arg-type]
        assert isinstance(job, ChildJob)
        job.channel = channel
        signal = CancelSignal()
        channel.signal = signal
        try:
            args = (job, token, signal)[:positional]
            result = processor(*args, signal=signal) if by_name else processor(*args)
            reply: tuple[Any, ...] = ("done", json.dumps(result))
        except Exception as exc:  # noqa: BLE001 - any processor failure fails the attempt
            reply = _error_message(exc)
        finally:
            channel.signal = None
        channel.send(reply)
