"""The CLI's help, confirmations, listings and job reprs say what a user needs."""

from __future__ import annotations

import argparse
import io
import re
import sys

import pytest
from jobfactory import put_job

from bullmq_sync import Job
from bullmq_sync.cli import main
from bullmq_sync.cli.main import build_parser


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(subparsers(build_parser())))
def test_every_argument_has_help_and_states_its_default(command):
    parser = subparsers(build_parser())[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{command} {name} has no help text"
        trivial = action.default in (None, False, argparse.SUPPRESS) or action.required
        if not trivial and action.option_strings:
            assert "default" in action.help, f"{command} {name}: help does not say its default"


@pytest.fixture
def g(redis_url, prefix):
    return ["--url", redis_url, "--prefix", prefix]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_answering_no_changes_nothing_and_exits_0(g, raw, prefix, capsys, monkeypatch):
    put_job(raw, prefix, "q", "1", state="failed")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert main([*g, "retry", "q", "--all"]) == 0
    err = capsys.readouterr().err
    assert "Move 1 failed job(s)" in err and err.rstrip().endswith("nothing changed")
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == ["1"]


def test_answering_yes_moves(g, raw, prefix, capsys, monkeypatch):
    put_job(raw, prefix, "q", "1", state="failed")
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert main([*g, "retry", "q", "--all"]) == 0
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]


def test_jobs_completed_shows_return_values(g, raw, prefix, capsys):
    put_job(raw, prefix, "q", "1", state="completed", extra={"returnvalue": '{"sent": "ada"}'})
    assert main([*g, "jobs", "q", "--state", "completed"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-2:] == ["RETURN", "VALUE"]
    assert row.endswith('{"sent": "ada"}')


def test_jobs_delayed_shows_the_due_time(g, queue, capsys):
    queue.add("later", {}, {"delay": 3_600_000})
    assert main([*g, "jobs", "q", "--state", "delayed"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-1] == "DUE"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (59m|1h)\)$", row), row


def test_repr_of_a_delayed_job_shows_its_state(queue):
    job = queue.add("later", {}, {"delay": 60_000})
    assert re.fullmatch(
        r"<Job '\w+:q' 1 'later' attempts=0 delayed until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC>",
        repr(job),
    ), repr(job)
    job.promote()
    fetched = Job.from_id(queue, job.id)
    assert "delayed" not in repr(fetched)
    assert "delayed" not in repr(queue.add("now", {}))
