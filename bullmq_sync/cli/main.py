"""Argument parsing and the exit-code contract of ``bullmq-sync``.

Exit codes: 0 success, 1 an error (printed to stderr, no traceback), 2 a usage error,
130 Ctrl-C. A closed pipe (``bullmq-sync jobs q | head``) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..connection import DEFAULT_URL
from ..errors import BullMQSyncError
from . import commands as commands
from .output import parse_time

STATES = ("waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children")


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``bullmq-sync`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"Redis URL (default: $REDIS_URL, else {DEFAULT_URL})",
    )
    common.add_argument(
        "--prefix", default=argparse.SUPPRESS, help="BullMQ key prefix (default: bull)"
    )
    reads = argparse.ArgumentParser(add_help=False)
    reads.add_argument("--json", action="store_true", help="print JSON instead of text")

    parser = argparse.ArgumentParser(
        prog="bullmq-sync",
        description="Inspect and operate BullMQ queues from the shell.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"bullmq-sync {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    retry = sub.add_parser(
        "retry",
        parents=[common, reads],
        help="move failed (or completed) jobs back to waiting",
        description=(
            "Retry the given jobs, or with --all every job of a state "
            "(optionally only those finished before a time)."
        ),
    )
    retry.add_argument("queue")
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    retry.add_argument("--all", action="store_true", help="retry every job in --state")
    retry.add_argument("--state", choices=("failed", "completed"), default="failed")
    retry.add_argument("--reset-attempts-made", action="store_true")
    retry.add_argument("--reset-attempts-started", action="store_true")
    retry.add_argument(
        "--finished-before",
        type=_time,
        metavar="TIME",
        help="with --all: only jobs finished before TIME (epoch ms, 2h, 7d, or ISO 8601)",
    )
    retry.add_argument("--dry-run", action="store_true", help="with --all: count, move nothing")
    retry.add_argument("--yes", "-y", action="store_true", help="with --all: do not ask")
    retry.set_defaults(handler=commands.retry)

    jobs = sub.add_parser("jobs", parents=[common, reads], help="list the jobs of a state")
    jobs.add_argument("queue")
    jobs.add_argument("--state", choices=STATES, default="failed")
    jobs.add_argument("--limit", type=_positive, default=50, help="at most N jobs (default 50)")
    jobs.set_defaults(handler=commands.jobs)

    show = sub.add_parser("show", parents=[common, reads], help="one job, as JSON")
    show.add_argument("queue")
    show.add_argument("job_id")
    show.set_defaults(handler=commands.show)

    counts = sub.add_parser("counts", parents=[common, reads], help="job counts per state")
    counts.add_argument("queue")
    counts.set_defaults(handler=commands.counts)

    events = sub.add_parser("events", parents=[common, reads], help="print the event stream")
    events.add_argument("queue")
    events.add_argument(
        "--follow", "-f", action="store_true", help="wait for new events until Ctrl-C"
    )
    events.add_argument(
        "--from",
        dest="from_id",
        default=None,
        metavar="ID",
        help="start after this stream id (default: the beginning; with --follow: now)",
    )
    events.add_argument("--count", type=_positive, default=None, help="stop after N events")
    events.set_defaults(handler=commands.events)

    worker = sub.add_parser("worker", parents=[common], help="process jobs with a Python function")
    worker.add_argument("target", metavar="module:function")
    worker.add_argument("--queue", "-q", required=True)
    worker.add_argument(
        "--concurrency",
        "-c",
        type=_positive,
        default=1,
        help="jobs run at once in threads (default 1)",
    )
    worker.add_argument(
        "--processes",
        "-p",
        type=_positive,
        default=None,
        help="run the function in N child processes, for CPU-bound work (default: threads)",
    )
    worker.add_argument(
        "--max-jobs-per-child",
        type=_positive,
        default=None,
        metavar="M",
        help="replace a child process after M jobs (with --processes; default never)",
    )
    worker.add_argument("--log-level", default="INFO")
    worker.set_defaults(handler=commands.worker)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="fail a job, retry it, watch it succeed (embedded Redis unless --url)",
    )
    demo.add_argument("--log-level", default="INFO")
    demo.set_defaults(handler=commands.demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bullmq-sync``; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.url_given = hasattr(args, "url") or bool(os.environ.get("REDIS_URL"))
    if not hasattr(args, "url"):
        args.url = os.environ.get("REDIS_URL") or DEFAULT_URL
    if not hasattr(args, "prefix"):
        args.prefix = "bull"
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except commands.UsageError as exc:
        sys.stderr.write(f"bullmq-sync {args.command}: usage error: {exc}\n")
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BullMQSyncError as exc:
        sys.stderr.write(f"bullmq-sync: error: {exc}\n")
        return 1


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
