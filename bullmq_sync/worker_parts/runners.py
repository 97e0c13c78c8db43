"""How a slot calls the processor. ``ThreadRunner`` calls it in the slot's own thread; the
process pool (``pool.ProcessRunner``) runs it in a child process behind the same method."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .signals import processor_arguments

if TYPE_CHECKING:
    from ..job import Job
    from .signals import CancelSignal


class Runner(Protocol):
    def start(self) -> None: ...

    def run(self, job: Job, token: str, signal: CancelSignal) -> Any: ...

    def close(self, force: bool) -> None: ...


class ThreadRunner:
    """``processor(job)``, ``processor(job, token)`` or ``processor(job, token, signal)``
    (also ``signal=`` as a keyword-only parameter), as the processor declares."""

    def __init__(self, processor: Callable[..., Any]) -> None:
        self._processor = processor
        self._positional, self._signal_by_name = processor_arguments(processor)

    def start(self) -> None:
        return None

    def run(self, job: Job, token: str, signal: CancelSignal) -> Any:
        args: tuple[Any, ...] = (job, token, signal)[: self._positional]
        if self._signal_by_name:
            return self._processor(*args, signal=signal)
        return self._processor(*args)

    def close(self, force: bool) -> None:
        return None
