"""``manage.py bullmq_worker module:function --queue Q [--concurrency N]``: run a Worker.

It uses the process's pool from ``settings.BULLMQ``; SIGTERM/SIGINT close it gracefully
(jobs in flight finish). Logging is left as the project's ``LOGGING`` configured it.
"""

# mypy: allow-subclassing-any
from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from .....cli.commands import UsageError, load_target
from .....errors import BullMQSyncError
from ...queues import get_connection, read_settings


class Command(BaseCommand):
    help = "Process jobs of a queue with a Python function (module:function)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("target", metavar="module:function")
        parser.add_argument("--queue", "-q", required=True)
        parser.add_argument("--concurrency", "-c", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        from .....worker import Worker

        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        try:
            processor = load_target(options["target"])
        except (UsageError, BullMQSyncError) as exc:
            raise CommandError(str(exc)) from exc
        worker = Worker(
            options["queue"],
            processor,
            connection=get_connection(),
            prefix=read_settings().prefix,
            concurrency=options["concurrency"],
            autorun=False,
        )
        self.stderr.write(
            f"worker on {options['queue']} (concurrency {options['concurrency']}); "
            "SIGTERM/Ctrl-C stops"
        )
        worker.run(install_signal_handlers=True)
        self.stdout.write(f"worker stopped after {worker.processed} job(s)")
