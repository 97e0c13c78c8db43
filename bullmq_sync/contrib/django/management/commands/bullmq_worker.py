"""``manage.py bullmq_worker module:function --queue Q [--concurrency N]``: run a Worker.

It uses the process's pool from ``settings.BULLMQ``; SIGTERM/SIGINT close it gracefully
(jobs in flight finish). Logging is left as the project's ``LOGGING`` configured it; when
it routes the ``bullmq_sync`` logger nowhere, the command prints that logger's records
(every job: completions at info, failures at warning) to stderr at ``--log-level``.
"""

# mypy: allow-subclassing-any
from __future__ import annotations

import logging
import os
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from .....cli.commands import UsageError, load_target
from .....errors import BullMQSyncError
from ...queues import get_connection, read_settings


class Command(BaseCommand):
    help = "Process jobs of a queue with a Python function (module:function)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "target", metavar="module:function", help="the processor, e.g. myapp.tasks:welcome"
        )
        parser.add_argument("--queue", "-q", required=True, help="the queue to process")
        parser.add_argument(
            "--concurrency", "-c", type=int, default=1, help="jobs run at once (default 1)"
        )
        parser.add_argument(
            "--processes",
            "-p",
            type=int,
            default=None,
            help="run the processor in N child processes, for CPU-bound work (default: threads)",
        )
        parser.add_argument(
            "--max-jobs-per-child",
            type=int,
            default=None,
            help="replace a child process after this many jobs (with --processes; default never)",
        )
        parser.add_argument(
            "--default-scheduling",
            action="store_true",
            help="keep the job threads under Linux's default policy (default: SCHED_BATCH)",
        )
        parser.add_argument(
            "--log-level",
            default="INFO",
            help="level of the per-job log lines when LOGGING does not route bullmq_sync "
            "(default INFO)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from .....worker import Worker

        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        level = logging.getLevelName(str(options["log_level"]).upper())
        if not isinstance(level, int):
            raise CommandError(f"unknown --log-level {options['log_level']!r}")
        processes = options["processes"]
        try:
            processor: Any = options["target"] if processes else load_target(options["target"])
            worker = Worker(
                options["queue"],
                processor,
                connection=get_connection(),
                prefix=read_settings().prefix,
                concurrency=options["concurrency"],
                processes=processes,
                max_jobs_per_child=options["max_jobs_per_child"],
                batch_scheduling=not options["default_scheduling"],
                child_initializer=f"{__name__}:setup_child" if processes else None,
                autorun=False,
            )
        except (UsageError, BullMQSyncError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        handler = _console_handler_if_unrouted(self.stderr, level)
        self.stderr.write(
            f"worker on {options['queue']} "
            + (f"({processes} processes)" if processes else f"(concurrency {worker.concurrency})")
            + "; SIGTERM/Ctrl-C stops"
        )
        try:
            worker.run(install_signal_handlers=True)
        finally:
            if handler is not None:
                logging.getLogger("bullmq_sync").removeHandler(handler)
        self.stdout.write(f"worker stopped after {worker.processed} job(s)")


def setup_child() -> None:
    """Runs first in each worker child process: Django set up from DJANGO_SETTINGS_MODULE (as
    manage.py sets it), so processors can use the ORM."""
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django  # type: ignore[import-untyped]

        django.setup()


def _console_handler_if_unrouted(stream: Any, level: int) -> logging.Handler | None:
    """A stderr handler for ``bullmq_sync`` when no configured handler would show its records."""
    logger: logging.Logger | None = logging.getLogger("bullmq_sync")
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return None
        logger = logger.parent if logger.propagate else None
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    target = logging.getLogger("bullmq_sync")
    target.addHandler(handler)
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
    return handler
