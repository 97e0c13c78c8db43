"""``manage.py bullmq_stats QUEUE... [--json]``: job counts per state of each queue."""

# mypy: allow-subclassing-any
from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from .....cli.output import table
from .....errors import BullMQSyncError
from ...queues import get_connection, get_queue, read_settings


class Command(BaseCommand):
    help = "Job counts per state for each named queue (default: settings.BULLMQ QUEUES)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "queues",
            nargs="*",
            metavar="QUEUE",
            help="queue names (default: settings.BULLMQ QUEUES)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON (default: a table)")

    def handle(self, *args: Any, **options: Any) -> None:
        names = options["queues"] or list(read_settings().queues)
        if not names:
            raise CommandError("name at least one QUEUE (or list them in settings.BULLMQ QUEUES)")
        try:
            with get_connection().short_budget():  # interactive: say soon if Redis is down
                counts = {name: get_queue(name).get_job_counts() for name in names}
        except (ImproperlyConfigured, BullMQSyncError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        states = sorted({state for numbers in counts.values() for state in numbers})
        rows = [[name, *(numbers.get(s, 0) for s in states)] for name, numbers in counts.items()]
        self.stdout.write(table(["QUEUE", *states], rows))
