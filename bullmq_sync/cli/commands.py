"""What each ``bullmq-sync`` subcommand does, through the public API only."""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..connection import INTERACTIVE_RETRY_BUDGET, Connection
from ..display import format_time
from ..errors import BullMQSyncError, JobError, JobNotInState
from ..events import QueueEvent, QueueEvents
from ..job import Job
from ..queue import Queue
from .output import ProgressBar, age, dumps, now_ms, one_line, table

CLI_RETRY_BUDGET = INTERACTIVE_RETRY_BUDGET
"""Seconds the short-lived commands keep retrying an unreachable Redis before giving up
(also their connect timeout)."""

RETRY_BATCH = 1000
"""Jobs moved per Redis call by ``retry --all`` (BullMQ's own batch size)."""


class UsageError(Exception):
    """A command line that parses but cannot run as given (exit code 2)."""


def out(text: str = "") -> None:
    """Print a line to stdout (looked up at call time, so tests can capture it)."""
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    """Print a line to stderr."""
    sys.stderr.write(text + "\n")


def check_reachable(connection: Connection) -> None:
    """One PING within the interactive budget, so a long-running command that cannot reach
    Redis says where and why in seconds (it keeps the full budget once running)."""
    with connection.short_budget():
        connection.execute("PING")


@contextmanager
def open_queue(args: argparse.Namespace) -> Iterator[Queue]:
    """The queue named on the command line, on a connection closed afterwards."""
    connection = Connection(
        args.url, retry_budget=CLI_RETRY_BUDGET, socket_connect_timeout=CLI_RETRY_BUDGET
    )
    try:
        with Queue(args.queue, connection=connection, prefix=args.prefix) as queue:
            yield queue
    finally:
        connection.close()


# -- retry ---------------------------------------------------------------------------------


def retry(args: argparse.Namespace) -> int:
    """``retry QUEUE JOB_ID...`` or ``retry QUEUE --all``."""
    if args.all and args.job_ids:
        raise UsageError("give job ids or --all, not both")
    if not args.all and not args.job_ids:
        raise UsageError("give at least one JOB_ID, or --all")
    if not args.all and (args.finished_before is not None or args.dry_run or args.yes):
        raise UsageError("--finished-before, --dry-run and --yes go with --all")
    if args.all and (args.reset_attempts_made or args.reset_attempts_started):
        raise UsageError("--reset-attempts-* apply to retries by job id")
    with open_queue(args) as queue:
        if args.all:
            return _retry_all(queue, args)
        return _retry_ids(queue, args)


def _summary(args: argparse.Namespace, moved: int, skipped: int, errors: int, **extra: Any) -> None:
    if args.json:
        out(json.dumps({"moved": moved, "skipped": skipped, "errors": errors, **extra}))
    else:
        note = "".join(f", {k.replace('_', ' ')} {v}" for k, v in extra.items())
        out(f"moved {moved}, skipped {skipped}, errors {errors}{note}")


def _retry_ids(queue: Queue, args: argparse.Namespace) -> int:
    moved = skipped = errors = 0
    for job_id in args.job_ids:
        job = queue.get_job(job_id)
        if job is None:
            err(f"job {job_id}: not found in queue {queue.name!r}")
            errors += 1
            continue
        try:
            job.retry(
                args.state,
                reset_attempts_made=args.reset_attempts_made,
                reset_attempts_started=args.reset_attempts_started,
            )
        except JobNotInState as exc:
            where = exc.actual_state or "in another state"
            err(f"job {job_id}: skipped, it is {where}, not {args.state}")
            skipped += 1
        except JobError as exc:
            err(f"job {job_id}: {exc}")
            errors += 1
        else:
            moved += 1
    _summary(args, moved, skipped, errors)
    return 0 if moved == len(args.job_ids) else 1


def _matching(queue: Queue, state: str, before: int | None) -> int:
    """How many jobs ``retry --all`` would move now."""
    if before is None:
        return int(queue.get_job_counts(state)[state])
    total = 0
    start = 0
    while True:
        page = queue.get_jobs([state], start, start + RETRY_BATCH - 1, asc=True)
        for job in page:
            if (job.finished_on or 0) > before:
                return total
            total += 1
        if len(page) < RETRY_BATCH:
            return total
        start += RETRY_BATCH


def _retry_all(queue: Queue, args: argparse.Namespace) -> int:
    state = args.state
    expected = _matching(queue, state, args.finished_before)
    if args.dry_run:
        if args.json:
            out(json.dumps({"dry_run": True, "would_move": expected, "state": state}))
        else:
            out(f"dry run: would move {expected} {state} job(s) of {queue.name!r} to waiting")
        return 0
    if expected == 0:
        _summary(args, 0, 0, 0)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"would move {expected} {state} job(s): add --yes to confirm")
        sys.stderr.write(f"Move {expected} {state} job(s) of {queue.name!r} to waiting? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            err("nothing changed")
            return 0
    bar = ProgressBar(sys.stderr, expected, label="retrying ")
    errors = 0
    moved = 0
    try:
        moved = int(
            queue.retry_jobs(
                state=state,
                count=RETRY_BATCH,
                timestamp=args.finished_before,
                progress=bar.update,
            )
        )
    except BullMQSyncError as exc:
        bar.finish()
        moved = bar.done
        errors = 1
        err(f"bullmq-sync: error: {exc}")
    else:
        bar.update(moved)
        bar.finish()
    _summary(args, moved, max(0, expected - moved), errors)
    return 1 if errors else 0


# -- read commands -------------------------------------------------------------------------


def _attempts(job: Job) -> str:
    allowed = job.opts.get("attempts")
    return f"{job.attempts_made}/{allowed}" if allowed else str(job.attempts_made)


def jobs(args: argparse.Namespace) -> int:
    """``jobs QUEUE --state S --limit N``: id, name, attempts, age, and per state the failed
    reason, the return value, the due time or the priority."""
    with open_queue(args) as queue:
        found = queue.get_jobs([args.state], 0, args.limit - 1, asc=False)
        scores = (
            queue.connection.pipeline([("ZSCORE", queue.keys.delayed, job.id) for job in found])
            if args.state == "delayed" and found
            else []
        )
    if args.json:
        out(dumps([job.to_dict() for job in found]))
        return 0
    if not found:
        out(f"no {args.state} jobs in {args.queue!r}")
        return 0
    headers = ["ID", "NAME", "ATTEMPTS", "AGE"]
    extra: list[str] = []
    if args.state == "failed":
        headers.append("FAILED REASON")
        extra = [one_line(job.failed_reason, 80) for job in found]
    elif args.state == "completed":
        headers.append("RETURN VALUE")
        extra = [
            one_line(json.dumps(job.return_value, ensure_ascii=False, default=str), 80)
            for job in found
        ]
    elif args.state == "delayed":
        headers.append("DUE")
        extra = [_due(score) for score in scores]
    elif args.state == "prioritized":
        headers.append("PRIORITY")
        extra = [str(job.priority) for job in found]
    rows = [
        [job.id, one_line(job.name, 30), _attempts(job), age(job.timestamp)]
        + ([extra[i]] if extra else [])
        for i, job in enumerate(found)
    ]
    out(table(headers, rows))
    return 0


def _due(score: Any) -> str:
    """A delayed-set score as ``2026-12-04 15:30:00 UTC (in 5m)``."""
    if score is None:
        return "-"  # promoted since the listing
    due = int(float(score)) >> 12  # BullMQ's score: due ms * 4096 + a sequence number
    left = due - now_ms()
    countdown = f"in {age(now_ms() - left)}" if left > 0 else "now"
    return f"{format_time(due)[:19]} UTC ({countdown})"


def show(args: argparse.Namespace) -> int:
    """``show QUEUE JOB_ID``: the job as JSON (Node's ``job.toJSON()`` plus ``state``)."""
    with open_queue(args) as queue:
        job = queue.get_job(args.job_id)
        if job is None:
            err(f"bullmq-sync: error: job {args.job_id} not found in queue {args.queue!r}")
            return 1
        state = str(queue.get_job_state(job.id))
    out(dumps({**job.to_dict(), "state": state}))
    return 0


def counts(args: argparse.Namespace) -> int:
    """``counts QUEUE``: jobs per state."""
    with open_queue(args) as queue:
        numbers = {str(k): int(v) for k, v in queue.get_job_counts().items()}
    if args.json:
        out(json.dumps(numbers))
    else:
        out(table(("STATE", "COUNT"), sorted(numbers.items())))
    return 0


def _event_line(event: QueueEvent) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(event.timestamp / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    parts = [
        f"{key}={json.dumps(value) if not isinstance(value, str) else value}"
        for key, value in event.fields.items()
        if key != "jobId"
    ]
    job = f"job={event.job_id}" if event.job_id is not None else ""
    return "  ".join(p for p in (when, event.name, job, one_line(" ".join(parts), 200)) if p)


def events(args: argparse.Namespace) -> int:
    """``events QUEUE [--follow]``: the event stream, one line (or JSON object) per event."""
    start = args.from_id or ("$" if args.follow else "0")
    with open_queue(args) as queue:
        reader = QueueEvents(
            queue.name, connection=queue.connection, prefix=queue.prefix, last_event_id=start
        )
        try:
            shown = 0
            for event in reader.iter(block=args.follow):
                if args.json:
                    record = {"id": event.id, "event": event.name, **event.fields}
                    out(json.dumps(record, ensure_ascii=False, default=str))
                else:
                    out(_event_line(event))
                sys.stdout.flush()
                shown += 1
                if args.count is not None and shown >= args.count:
                    break
        finally:
            reader.close()
    return 0


# -- worker and demo -----------------------------------------------------------------------


def load_target(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function (the current directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BullMQSyncError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise BullMQSyncError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise BullMQSyncError(f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


_CONSOLE_NOISE = (
    "elapsed_ms",
    "replayed",
    "reset_attempts_made",
    "reset_attempts_started",
    "force",
    "will_retry",
)


def compact_for_console(
    _: Any, __: str, event: dict[str, Any], omit: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Shorter console lines: ``from_state``/``to_state`` as ``state=failed->waiting``, the
    worker id cut to 8 characters, no empty or default-valued fields, and none in ``omit``."""
    for key in omit:
        event.pop(key, None)
    for key in _CONSOLE_NOISE:
        if not event.get(key):
            event.pop(key, None)
    event.pop("elapsed_ms", None)
    before, after = event.pop("from_state", None), event.pop("to_state", None)
    if before and after:
        event["state"] = f"{before}->{after}"
    elif before or after:
        event["state"] = before or after
    worker = event.get("worker")
    if isinstance(worker, str) and len(worker) > 8:
        event["worker"] = worker[:8]
    return {key: value for key, value in event.items() if value is not None}


def _level_padding_off() -> dict[str, Any]:
    import inspect

    import structlog

    parameters = inspect.signature(structlog.dev.ConsoleRenderer).parameters
    return {"pad_level": False} if "pad_level" in parameters else {}


def configure_console_logging(
    level: str, *, omit: tuple[str, ...] = (), width: int | None = None
) -> None:
    """Console logging for the CLI process (an app may do this; the library never does).

    ``omit``: fields left out of every line (the demo's single queue and worker); ``width``:
    cut each line to that many characters (the demo fits a terminal)."""
    no_level_pad = _level_padding_off()
    import structlog

    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise UsageError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    colors = bool(getattr(sys.stderr, "isatty", lambda: False)())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            functools.partial(compact_for_console, omit=omit),
            structlog.dev.ConsoleRenderer(colors=colors, pad_event=14, **no_level_pad),
            *([] if width is None else [lambda _, __, line: one_line(line, width)]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


def worker(args: argparse.Namespace) -> int:
    """``worker module:function --queue Q --concurrency N``: run a Worker until stopped."""
    from ..worker import Worker

    processor = load_target(args.target)
    configure_console_logging(args.log_level)
    processes = getattr(args, "processes", None)
    connection = Connection(args.url)
    try:
        check_reachable(connection)
        runner = Worker(
            args.queue,
            args.target if processes else processor,
            connection=connection,
            prefix=args.prefix,
            concurrency=args.concurrency,
            processes=processes,
            max_jobs_per_child=getattr(args, "max_jobs_per_child", None),
            batch_scheduling=not getattr(args, "default_scheduling", False),
            autorun=False,
        )
        how = f"{processes} processes" if processes else f"concurrency {args.concurrency}"
        err(f"worker on {args.prefix}:{args.queue} ({how}); Ctrl-C stops")
        runner.run(install_signal_handlers=True)
    finally:
        connection.close()
    return 0
