"""Ending an attempt: completed, failed for good, retried at once or after a backoff delay.

Finishing a job and taking the next one is ONE script call (``finishJob``), as in BullMQ.
Failures store ``failedReason`` = the exception's message and ``stacktrace`` = formatted
tracebacks (``stackTraceLimit`` honoured); attempts and backoff decide between
``delayActiveJob``, ``retryActiveJob`` and failed for good.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from .. import log, pipelined
from ..attempt_calls import Settings, delay_call, finish_call, retry_call
from ..backoff import retry_delay
from ..errors import UnrecoverableError, job_error
from ..pipelined import PipelinedScripts

MAX_LOGGED_MESSAGE = 500
"""Longest error message a failure log carries (the full one is in ``failedReason``)."""

if TYPE_CHECKING:
    from ..connection import Connection
    from ..job import Job
    from ..queue import Queue
    from .emitter import Emitter
    from .fetcher import Fetcher


class Finisher:
    """Moves an active job on after its processor returned or raised; counts what it finished."""

    def __init__(
        self,
        queue: Queue,
        connection: Connection,
        emitter: Emitter,
        fetcher: Fetcher,
        calls: Settings,
        *,
        worker_id: str,
        share_socket: bool = True,
    ) -> None:
        self._queue = queue
        self._connection = connection
        self._emitter = emitter
        self._fetcher = fetcher
        self._calls = calls
        self._worker_id = worker_id
        self._pipelined = (
            PipelinedScripts(connection, reader_thread=share_socket)
            if pipelined.supported(connection)
            else None
        )
        """Finishing calls of all slots share one socket (Redis reads them in batches); a
        single slot has nothing to share it with: it reads its own replies there, with no
        reader thread."""
        self._count_lock = threading.Lock()
        self.processed = 0
        """Jobs finished (completed or failed for good)."""

    def close(self) -> None:
        """Close the shared finishing socket (calls still in flight raise ``ClientClosed``)."""
        if self._pipelined is not None:
            self._pipelined.close()

    # -- completed ---------------------------------------------------------------------------

    def complete(
        self, job: Job, token: str, result: Any, encoded: str, fetch_next: bool
    ) -> tuple[Job, str] | None:
        reply = self._finish(job, token, "completed", encoded, "", fetch_next)
        if isinstance(reply, int) and reply < 0:
            if reply == -9:  # a failed child (failParentOnFailure): BullMQ fails the parent
                error = job_error(
                    reply, queue=self._queue.name, job_id=job.id, command="moveToFinished"
                )
                return self.fail(job, token, UnrecoverableError(str(error)), fetch_next)
            self.refused(job, reply, "moveToFinished")
            return None
        job.return_value = result
        self._emitter.emit("completed", job, result)
        return self._next_from(reply, token, fetch_next)

    def _finish(
        self,
        job: Job,
        token: str,
        target: str,
        value: str,
        stack: str,
        fetch_next: bool,
        error: BaseException | None = None,
    ) -> Any:
        """One finishJob call; on success the job's fields are updated and the move logged."""
        keys, args = finish_call(
            self._queue, job.id, job.opts, token, target, value, stack, fetch_next, self._calls
        )
        if self._pipelined is not None:
            reply = self._pipelined.call("finishJob", keys, args)
        else:
            reply = self._connection.run_script("finishJob", keys, args)
        if isinstance(reply, int) and reply < 0:
            return reply
        job.finished_on = int(args[1])
        job.attempts_made += 1
        with self._count_lock:
            self.processed += 1
        if error is None:
            log.transition(
                f"job.{target}",
                queue=self._queue.name,
                job_id=job.id,
                from_state="active",
                to_state=target,
                attempts_made=job.attempts_made,
            )
        else:
            self._log_failure(job, error, "job.failed", target, retry_in_ms=None)
        return reply

    def _log_failure(
        self, job: Job, error: BaseException, event: str, to_state: str, retry_in_ms: int | None
    ) -> None:
        """One warning per failed attempt: the error's type and message (never job data), the
        attempt numbers, and whether and when the job will run again."""
        if not log.enabled(logging.WARNING):
            return
        message = str(error)
        if len(message) > MAX_LOGGED_MESSAGE:
            message = message[:MAX_LOGGED_MESSAGE] + "..."
        fields: dict[str, Any] = {
            "queue": self._queue.name,
            "job_id": job.id,
            "from_state": "active",
            "to_state": to_state,
            "error_type": type(error).__name__,
            "error": message,
            "attempts_made": job.attempts_made,
            "attempts": int(job.opts.get("attempts") or 1),
            "will_retry": to_state != "failed",
        }
        if retry_in_ms is not None:
            fields["retry_in_ms"] = fields["delay_ms"] = retry_in_ms
            fields["retry_at"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + retry_in_ms / 1000)
            )
        log.event(event, level=logging.WARNING, **fields)

    # -- failed --------------------------------------------------------------------------------

    def fail(
        self, job: Job, token: str, error: BaseException, fetch_next: bool
    ) -> tuple[Job, str] | None:
        message = str(error)
        stack = list(job.stacktrace)
        stack.append(
            getattr(error, "child_traceback", None)  # raised in a child process
            or "".join(traceback.format_exception(type(error), error, error.__traceback__))
        )
        limit = job.opts.get("stackTraceLimit")
        if limit == 0:
            stack = []
        elif isinstance(limit, int) and limit > 0:
            stack = stack[-limit:]
        stack_json = json.dumps(stack)
        try:
            delay = retry_delay(
                attempts=int(job.opts.get("attempts") or 0),
                attempts_made=job.attempts_made,
                attempts_started=job.attempts_started,
                max_started_attempts=self._calls.max_started_attempts,
                unrecoverable=isinstance(error, UnrecoverableError),
                backoff=job.opts.get("backoff"),
                error=error,
                job=job,
                strategy=self._calls.backoff_strategy,
            )
        except Exception as exc:  # noqa: BLE001 - a broken strategy fails the job for good
            self._emitter.error(exc)
            delay = None
        job.failed_reason = message
        job.stacktrace = stack
        if delay is None:
            next_work = self._fail_for_good(job, token, error, stack_json, fetch_next)
        elif delay > 0:
            next_work = self._delay(job, token, error, stack_json, delay, fetch_next)
        else:
            self._retry_now(job, token, error, stack_json)
            next_work = None
        self._emitter.emit("failed", job, error)
        return next_work

    def _fail_for_good(
        self, job: Job, token: str, error: BaseException, stack_json: str, fetch_next: bool
    ) -> tuple[Job, str] | None:
        reply = self._finish(job, token, "failed", str(error), stack_json, fetch_next, error=error)
        if isinstance(reply, int) and reply < 0:
            self.refused(job, reply, "moveToFinished")
            return None
        return self._next_from(reply, token, fetch_next)

    def _delay(
        self,
        job: Job,
        token: str,
        error: BaseException,
        stack_json: str,
        delay: int,
        fetch_next: bool,
    ) -> tuple[Job, str] | None:
        keys, args = delay_call(
            self._queue,
            job.id,
            token,
            delay,
            reason=str(error),
            stack=stack_json,
            fetch_next=fetch_next,
            s=self._calls,
        )
        reply = self._connection.run_script("delayActiveJob", keys, args)
        if isinstance(reply, int) and reply < 0:
            self.refused(job, reply, "moveToDelayed")
            return None
        job.attempts_made += 1
        job.delay = delay
        self._log_failure(job, error, "job.delayed", "delayed", retry_in_ms=delay)
        return self._next_from(reply, token, fetch_next)

    def _retry_now(self, job: Job, token: str, error: BaseException, stack_json: str) -> None:
        keys, args = retry_call(self._queue, job.id, token, job.lifo, str(error), stack_json)
        reply = self._connection.run_script("retryActiveJob", keys, args)
        if isinstance(reply, int):
            self.refused(job, reply, "retryJob")
            return
        job.attempts_made += 1
        self._log_failure(job, error, "job.retrying", str(reply[1]), retry_in_ms=0)

    # -- helpers -------------------------------------------------------------------------------

    def _next_from(self, reply: Any, token: str, fetch_next: bool) -> tuple[Job, str] | None:
        job = self._fetcher.job_from_reply(reply)
        if fetch_next:
            self._fetcher.note(job is not None)
        if job is None:
            return None
        # Even when closing meanwhile, a job handed back is locked by us: run it.
        return job, token

    def refused(self, job: Job, code: int, command: str) -> None:
        """A finishing script answered with a BullMQ error code: log and report it."""
        error = job_error(
            code, queue=self._queue.name, job_id=job.id, command=command, state="active"
        )
        log.refused(
            "job.finish_refused",
            queue=self._queue.name,
            job_id=job.id,
            code=error.code,
            error=str(error),
        )
        self._emitter.error(error)
