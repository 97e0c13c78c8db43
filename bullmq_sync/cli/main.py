"""Argument parsing and the exit-code contract of ``bullmq-sync``.

Exit codes: 0 success, 1 an error (printed to stderr, no traceback), 2 a usage error or a
setting that cannot work (a bad URL, a missing password, a refused argument),
130 Ctrl-C. A closed pipe (``bullmq-sync jobs q | head``) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..connection import DEFAULT_URL, default_url
from ..errors import BullMQSyncError, ConfigurationError, InvalidArgument
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
    reads.add_argument(
        "--json", action="store_true", help="print JSON instead of text (default: text)"
    )

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
    retry.add_argument("queue", help="the queue's name (without the prefix)")
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs to retry")
    retry.add_argument("--all", action="store_true", help="retry every job in --state")
    retry.add_argument(
        "--state",
        choices=("failed", "completed"),
        default="failed",
        help="the state the jobs are in (default: failed)",
    )
    retry.add_argument(
        "--reset-attempts-made",
        action="store_true",
        help="with JOB_IDs: start the attempt count again from 0",
    )
    retry.add_argument(
        "--reset-attempts-started",
        action="store_true",
        help="with JOB_IDs: start the started-attempts count again from 0",
    )
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
    jobs.add_argument("queue", help="the queue's name (without the prefix)")
    jobs.add_argument(
        "--state", choices=STATES, default="failed", help="which jobs to list (default: failed)"
    )
    jobs.add_argument("--limit", type=_positive, default=50, help="at most N jobs (default 50)")
    jobs.set_defaults(handler=commands.jobs)

    show = sub.add_parser("show", parents=[common, reads], help="one job, as JSON")
    show.add_argument("queue", help="the queue's name (without the prefix)")
    show.add_argument("job_id", help="the job's id")
    show.set_defaults(handler=commands.show)

    counts = sub.add_parser("counts", parents=[common, reads], help="job counts per state")
    counts.add_argument("queue", help="the queue's name (without the prefix)")
    counts.set_defaults(handler=commands.counts)

    events = sub.add_parser("events", parents=[common, reads], help="print the event stream")
    events.add_argument("queue", help="the queue's name (without the prefix)")
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
    events.add_argument(
        "--count", type=_positive, default=None, help="stop after N events (default: no limit)"
    )
    events.set_defaults(handler=commands.events)

    worker = sub.add_parser("worker", parents=[common], help="process jobs with a Python function")
    worker.add_argument(
        "target",
        metavar="module:function",
        help="the processor, e.g. tasks:send_email (the current directory is importable)",
    )
    worker.add_argument("--queue", "-q", required=True, help="the queue to process")
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
    worker.add_argument(
        "--default-scheduling",
        action="store_true",
        help="keep the job threads under Linux's default policy (default: SCHED_BATCH)",
    )
    worker.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)"
    )
    worker.set_defaults(handler=commands.worker)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="fail a job, retry it, watch it succeed (embedded Redis unless --url)",
    )
    demo.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)"
    )
    demo.set_defaults(handler=_demo)

    dashboard = sub.add_parser(
        "dashboard",
        parents=[common],
        help="serve the web dashboard (embedded Redis unless --url)",
        description=(
            "Serve the web dashboard with waitress. Basic auth when "
            "$BULLMQ_DASHBOARD_AUTH=user:password is set."
        ),
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dashboard.add_argument("--port", type=_port, default=8700, help="port (default 8700)")
    dashboard.add_argument("--read-only", action="store_true", help="hide and refuse actions")
    dashboard.add_argument(
        "--threads", type=_positive, default=16, help="request threads of the server (default 16)"
    )
    dashboard.set_defaults(handler=_dashboard)
    return parser


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {value}")
    return value


def _dashboard(args: argparse.Namespace) -> int:
    from .dashboard import run_dashboard

    return run_dashboard(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bullmq-sync``; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.url_given = hasattr(args, "url") or bool(os.environ.get("REDIS_URL"))
    if not hasattr(args, "url"):
        args.url = default_url()
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
    except (ConfigurationError, InvalidArgument) as exc:  # a bad URL, password, argument...
        sys.stderr.write(f"bullmq-sync {args.command}: error: {exc}\n")
        return 2
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


def _demo(args: argparse.Namespace) -> int:
    """``demo``: see ``bullmq_sync.cli.demo`` (imported only when the demo runs)."""
    from .demo import run_demo

    return run_demo(args)
