"""``manage.py bullmq_stats QUEUE... [--json]``: job counts per state of each queue."""

# mypy: allow-subclassing-any
from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand  # type: ignore[import-untyped]

from .....cli.output import table
from ...queues import get_queue


class Command(BaseCommand):
    help = "Job counts per state for each named queue."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("queues", nargs="+", metavar="QUEUE")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {name: get_queue(name).get_job_counts() for name in options["queues"]}
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        states = sorted({state for numbers in counts.values() for state in numbers})
        rows = [[name, *(numbers.get(s, 0) for s in states)] for name, numbers in counts.items()]
        self.stdout.write(table(["QUEUE", *states], rows))
