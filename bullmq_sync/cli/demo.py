"""``bullmq-sync demo``: a job fails, is retried with ``Job.retry``, and succeeds.

Without ``--url``/``REDIS_URL`` it runs on an embedded redis-server (see ``embedded``) that
is stopped when the demo ends. The console shows the library's ``job.*`` transition events
(this command configures stdlib logging + structlog; the library itself never does) and the
queue's event stream as the Node side would see it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from contextlib import ExitStack

from ..connection import Connection, redact_url
from ..errors import BullMQSyncError
from ..events import QueueEvent, QueueEvents
from ..job import Job
from ..queue import Queue
from .commands import check_reachable, configure_console_logging
from .embedded import EmbeddedRedis
from .output import one_line

STEP_TIMEOUT = 20.0
"""Seconds the demo waits for a job to reach the next state."""

_print_lock = threading.Lock()


def say(text: str) -> None:
    """One line of the demo's narration on stdout."""
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _stream_line(event: QueueEvent) -> None:
    details = " ".join(f"{k}={v}" for k, v in event.fields.items() if k != "jobId")
    job = f" job={event.job_id}" if event.job_id is not None else ""
    say("    " + one_line(f"stream: {event.name}{job} {details}", 76))


def _wait_for(queue: Queue, job_id: str, state: str) -> Job:
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        if str(queue.get_job_state(job_id)) == state:
            job = queue.get_job(job_id)
            if job is not None:
                return job
        if time.monotonic() > deadline:
            raise BullMQSyncError(
                f"demo: job {job_id} did not become {state} within {STEP_TIMEOUT:.0f} s"
            )
        time.sleep(0.05)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    from ..worker import Worker

    configure_console_logging(
        args.log_level,
        omit=("queue", "worker", "last_event_id"),
        width=shutil.get_terminal_size((80, 24)).columns,
    )
    with ExitStack() as stack:
        if args.url_given:
            url = args.url
            say(f"using the Redis at {redact_url(url)}")
        else:
            server = stack.enter_context(EmbeddedRedis())
            url = server.url
            say(f"started an embedded redis-server on {url}")
            stack.callback(say, "stopped the embedded redis-server")
        connection = Connection(url)
        stack.callback(connection.close)
        check_reachable(connection)
        name = f"demo-{os.urandom(3).hex()}"
        queue = Queue(name, connection=connection, prefix=args.prefix)
        stack.callback(queue.close)

        stream = QueueEvents(name, connection=connection, prefix=args.prefix, block_ms=1000)
        stream.on("*", _stream_line)
        stream.start()
        stack.callback(stream.close)

        tries: list[int] = []

        def greet(job: Job) -> dict[str, str]:
            tries.append(job.attempts_made)
            if len(tries) == 1:
                raise RuntimeError("flaky service: the first try always fails")
            return {"greeting": f"hello, {job.data['name']}"}

        worker = Worker(name, greet, connection=connection, prefix=args.prefix, concurrency=1)
        worker.start()
        stack.callback(worker.close)

        say(f"1. adding a job to queue {name!r} whose processor fails the first time")
        job = queue.add("greet", {"name": "world"}, {"attempts": 1})
        failed = _wait_for(queue, job.id, "failed")
        say(
            f"2. job {failed.id} failed after {failed.attempts_made} attempt(s): "
            f"{failed.failed_reason}"
        )
        say(f"3. retrying job {failed.id} with Job.retry()")
        failed.retry()
        done = _wait_for(queue, job.id, "completed")
        say(f"4. job {done.id} completed: returnvalue={done.return_value}")
        time.sleep(0.3)  # let the last stream events print
    say("done.")
    return 0
