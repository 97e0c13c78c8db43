"""Child processes for CPU-bound processors: ``Worker(..., processes=N)``.

Each slot runs its job in one child process (``spawn`` start method, so the processor is
named by import path ``"module:function"``); locks, renewal, stalled checks and every
Redis call stay in the parent. A child that dies mid-job (``os._exit``, a signal, the
kernel's OOM killer) fails the job with BullMQ's sandbox message ``Unexpected exit code: C
signal: S`` (the job's remaining attempts apply) and is replaced; ``max_jobs_per_child``
recycles a child after that many jobs.
"""

from __future__ import annotations

import json
import multiprocessing
import signal as signal_module
import threading
from collections.abc import Callable
from multiprocessing.connection import wait as wait_for_ready
from typing import TYPE_CHECKING, Any

from .. import log
from ..errors import (
    DelayedError,
    InvalidArgument,
    RateLimitError,
    UnrecoverableError,
    WaitingChildrenError,
    WaitingError,
)
from . import child as child_module
from .scheduling import default_policy_for_children
from .signals import processor_arguments

if TYPE_CHECKING:
    from multiprocessing.connection import Connection as Pipe
    from multiprocessing.context import SpawnContext, SpawnProcess

    from ..job import Job
    from .signals import CancelSignal

STOP_GRACE_SECONDS = 5.0
"""How long a retiring child may take to exit before it is terminated."""

_REBUILT: dict[str, type[BaseException]] = {
    "unrecoverable": UnrecoverableError,
    "rate_limit": RateLimitError,
    "delayed": DelayedError,
    "waiting_children": WaitingChildrenError,
    "waiting": WaitingError,
}


class ChildExited(Exception):
    """The child process running a job died; the message is BullMQ's sandbox message."""


class ProcessorError(Exception):
    """An error raised by the processor in a child, with its type name and traceback text."""

    child_traceback: str = ""


_error_classes: dict[str, type[ProcessorError]] = {}
_error_classes_lock = threading.Lock()


def _error_class(name: str) -> type[ProcessorError]:
    """A ProcessorError subclass named as the child's error class (for logs and listeners)."""
    if not name.isidentifier():
        name = "ProcessorError"
    with _error_classes_lock:
        cls = _error_classes.get(name)
        if cls is None:
            cls = type(name, (ProcessorError,), {"__module__": "bullmq_sync.child"})
            _error_classes[name] = cls
        return cls


def rebuild_error(type_name: str, message: str, stack: str, kind: str) -> BaseException:
    cls = _REBUILT.get(kind)
    error: BaseException = cls(message) if cls is not None else _error_class(type_name)(message)
    error.child_traceback = stack  # type: ignore[attr-defined]
    return error


def exit_message(code: int | None) -> str:
    """BullMQ's sandbox wording: ``Unexpected exit code: 3 signal: null``."""
    if code is not None and code < 0:
        try:
            name = signal_module.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"Unexpected exit code: null signal: {name}"
    return f"Unexpected exit code: {code} signal: null"


def processor_path(processor: Any) -> str:
    """``"module:function"`` for a path or a module-level function; refuses anything else."""
    if isinstance(processor, str):
        module_name, sep, attr = processor.partition(":")
        if not sep or not module_name or not attr:
            raise InvalidArgument(
                f"with processes=N the processor is named 'module:function', got {processor!r}"
            )
        return processor
    module_name = str(getattr(processor, "__module__", "") or "")
    qualname = getattr(processor, "__qualname__", "")
    if not callable(processor) or not module_name or "<" in qualname or module_name == "__main__":
        raise InvalidArgument(
            "with processes=N the processor must be importable by child processes: pass "
            "'module:function' (a module-level function, not a lambda, a closure or __main__)"
        )
    return f"{module_name}:{qualname}"


def _load(path: str) -> Callable[..., Any]:
    try:
        return child_module.import_processor(path)
    except (ImportError, AttributeError, TypeError) as exc:
        raise InvalidArgument(f"cannot load processor {path!r}: {exc}") from exc


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(
        self, context: SpawnContext, path: str, label: str, initializer: str | None
    ) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        self.process: SpawnProcess = context.Process(
            target=child_module.main,
            args=(child_end, path, initializer),
            name=label,
            daemon=True,
        )
        with default_policy_for_children():
            self.process.start()
        child_end.close()
        self.pipe: Pipe = parent_end
        self.jobs = 0
        self.ready = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _died(self) -> ChildExited:
        self.process.join(1.0)
        return ChildExited(exit_message(self.process.exitcode))

    def _receive(self, timeout: float | None) -> tuple[Any, ...] | None:
        """The next message, None on timeout; ChildExited once the child is gone."""
        ready = wait_for_ready([self.pipe, self.process.sentinel], timeout)
        if not ready:
            return None
        if self.pipe in ready or self.pipe.poll():
            try:
                message: tuple[Any, ...] = self.pipe.recv()
                return message
            except (EOFError, OSError):
                raise self._died() from None
        raise self._died()

    def wait_ready(self) -> None:
        while not self.ready:
            message = self._receive(None)
            if message is None:
                continue
            if message[0] == "fatal":
                self.stop()
                raise UnrecoverableError(str(message[1]))
            self.ready = message[0] == "ready"

    def run(self, job: Job, token: str, signal: CancelSignal) -> Any:
        self.wait_ready()
        try:
            self.pipe.send(("job", job.id, job.raw, token, job.queue.name, job.queue.keys.prefix))
        except (BrokenPipeError, OSError):
            raise self._died() from None
        forwarded = False
        while True:
            if signal.cancelled and not forwarded:
                forwarded = True
                self._send_quietly(("cancel", signal.reason))
            message = self._receive(None if forwarded else 0.05)
            if message is None:
                continue
            kind = message[0]
            if kind == "done":
                return json.loads(message[1])
            if kind == "error":
                raise rebuild_error(*message[1:5])
            if kind in ("progress", "log"):
                self._answer(job, kind, message[1])

    def _answer(self, job: Job, kind: str, value: Any) -> None:
        try:
            result: Any = None
            if kind == "progress":
                job.update_progress(value)
            else:
                result = job.log(value)
            reply: tuple[Any, ...] = ("reply", True, result)
        except Exception as exc:  # noqa: BLE001 - the child's call raises it
            reply = ("reply", False, f"{type(exc).__name__}: {exc}")
        self._send_quietly(reply)

    def _send_quietly(self, message: tuple[Any, ...]) -> None:
        try:
            self.pipe.send(message)
        except (BrokenPipeError, OSError):
            pass  # the child is gone: the next receive reports how

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        self._send_quietly(("stop",))
        self.process.join(grace)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.pipe.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_GRACE_SECONDS)
        self.pipe.close()


class ProcessRunner:
    """Runs the processor in up to ``processes`` child processes, one job per child at once."""

    def __init__(
        self,
        processor: Any,
        processes: int,
        max_jobs_per_child: int | None = None,
        *,
        initializer: str | None = None,
    ) -> None:
        self.path = processor_path(processor)
        self._initializer = initializer
        if initializer is not None:
            _load(processor_path(initializer))
        function = _load(self.path)
        processor_arguments(function)  # the same signatures as in threads
        self._processes = processes
        self._max_jobs = max_jobs_per_child
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._closed = False
        self._started = 0
        self.replaced = 0
        """Children replaced after dying mid-job."""
        self.recycled = 0
        """Children retired after ``max_jobs_per_child`` jobs."""

    def _spawn(self) -> _Child:
        self._started += 1
        child = _Child(
            self._context, self.path, f"bullmq-sync-child-{self._started}", self._initializer
        )
        self._all.add(child)
        return child

    def start(self) -> None:
        """Start every child now, so the first jobs do not wait for a child to boot."""
        with self._lock:
            while len(self._all) < self._processes and not self._closed:
                self._idle.append(self._spawn())

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise ChildExited("the worker is closing")
            while self._idle:
                child = self._idle.pop(0)
                if child.process.is_alive():
                    return child
                self._all.discard(child)
            return self._spawn()

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(child)
                return
        child.stop()

    def _forget(self, child: _Child) -> None:
        with self._lock:
            self._all.discard(child)

    def run(self, job: Job, token: str, signal: CancelSignal) -> Any:
        child = self._take()
        try:
            result = child.run(job, token, signal)
        except ChildExited as exc:
            self._forget(child)
            child.kill()
            self.replaced += 1
            log.event(
                "worker.child_exited",
                queue=job.queue.name,
                job_id=job.id,
                pid=child.pid,
                reason=str(exc),
            )
            raise
        except BaseException:
            self._give_back(child)
            raise
        child.jobs += 1
        if self._max_jobs is not None and child.jobs >= self._max_jobs:
            self._forget(child)
            self.recycled += 1
            threading.Thread(target=child.stop, name="bullmq-sync-child-stop", daemon=True).start()
        else:
            self._give_back(child)
        return result

    def pids(self) -> list[int]:
        """Process ids of the live children (for tests and monitoring)."""
        with self._lock:
            return [c.pid for c in self._all if c.pid is not None and c.process.is_alive()]

    def close(self, force: bool) -> None:
        with self._lock:
            self._closed = True
            children = list(self._all)
            self._all.clear()
            self._idle.clear()
        for child in children:
            if force:
                child.kill()
            else:
                child.stop()


__all__ = ["ChildExited", "ProcessRunner", "ProcessorError", "exit_message"]
