"""``manage.py bullmq_retry QUEUE JOB_ID...`` or ``QUEUE --all [--yes]`` (``bullmq-sync retry``)."""

# mypy: allow-subclassing-any
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.management.base import BaseCommand, CommandError  # type: ignore[import-untyped]

from .....cli import main
from ...queues import read_settings


class _Writer:
    """A file-like view of a command's OutputWrapper, for ``redirect_stdout``."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> int:
        self.wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return bool(self.wrapper.isatty())


class Command(BaseCommand):
    help = (
        "Retry failed (or --state completed) jobs: QUEUE JOB_ID... [--reset-attempts-made] or "
        "QUEUE --all [--finished-before TIME] [--dry-run] [--yes]. Same options as "
        "`bullmq-sync retry`; Redis URL and prefix come from settings.BULLMQ."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("queue", help="the queue's name")
        parser.add_argument(
            "rest",
            nargs=argparse.REMAINDER,
            metavar="ARGS",
            help="JOB_ID... or --all, and the options of `bullmq-sync retry --help`",
        )

    _from_argv = False

    def run_from_argv(self, argv: list[str]) -> None:
        self._from_argv = True
        super().run_from_argv(argv)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = read_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=2) from exc
        argv = ["--url", config.url, "--prefix", config.prefix, "retry", options["queue"]]
        argv += list(options["rest"])
        with contextlib.redirect_stdout(_Writer(self.stdout)):
            code = main(argv)
        if code and self._from_argv:
            sys.exit(code)  # bullmq-sync already said why on stderr: no second line
        if code:
            raise CommandError(f"bullmq-sync retry exited with code {code}", returncode=code)
