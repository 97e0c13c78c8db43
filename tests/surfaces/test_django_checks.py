"""``manage.py check`` validates settings.BULLMQ offline; bad settings never traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "bullmq_sync.contrib.django"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        BULLMQ={},
        USE_TZ=True,
    )
    django.setup()

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from redis_server import free_port

BAD = [
    ({"URL": "http://localhost:6402"}, "bullmq_sync.E003"),
    ({"URL": "redis://localhost:99999"}, "bullmq_sync.E003"),
    ({"URL": "redis+sentinel://h:26379"}, "bullmq_sync.E003"),
    ({"URL": "redis+cluster://h:abc"}, "bullmq_sync.E003"),
    ({"URL": 6379}, "bullmq_sync.E003"),
    ({"PREFIX": ""}, "bullmq_sync.E004"),
    ({"MAX_CONNECTIONS": 0}, "bullmq_sync.E005"),
    ({"MAX_CONNECTIONS": True}, "bullmq_sync.E005"),
    ({"QUEUES": "emails"}, "bullmq_sync.E006"),
    ({"QUEUES": ["ok", "bad:name"]}, "bullmq_sync.E006"),
    ({"QUEUES": [""]}, "bullmq_sync.E006"),
    ({"HOST": "x"}, "bullmq_sync.E002"),
    (["URL"], "bullmq_sync.E001"),
]


@pytest.mark.parametrize("bad,code", BAD)
def test_check_reports_bad_settings(bad, code):
    with override_settings(BULLMQ=bad), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert code in str(info.value)


def test_check_reports_every_problem_at_once():
    bad = {"URL": "http://x", "PREFIX": "", "MAX_CONNECTIONS": -1, "QUEUES": ["a:b"]}
    with override_settings(BULLMQ=bad), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    for code in ("E003", "E004", "E005", "E006"):
        assert f"bullmq_sync.{code}" in str(info.value)


def test_check_passes_without_connecting():
    good = {"URL": f"redis://127.0.0.1:{free_port()}/1", "QUEUES": ["emails", "{sms}"]}
    started = time.monotonic()
    with override_settings(BULLMQ=good):
        out = io.StringIO()
        call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
    assert time.monotonic() - started < 1.0  # no connection attempt, no retry budget spent


def test_manage_py_check_in_a_subprocess(tmp_path):
    (tmp_path / "manage.py").write_text(
        textwrap.dedent("""
        import sys
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["bullmq_sync.contrib.django"],
            BULLMQ={"URL": "http://localhost:6402"},
        )
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    """)
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 1
    assert "bullmq_sync.E003" in result.stderr and "unsupported Redis URL" in result.stderr
    assert "Traceback" not in result.stderr


def manage(tmp_path, bullmq: dict, *argv: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "manage.py").write_text(
        textwrap.dedent(f"""
        import sys
        from django.conf import settings
        settings.configure(INSTALLED_APPS=["bullmq_sync.contrib.django"], BULLMQ={bullmq!r})
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
    """)
    )
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_retry_command_says_it_once(tmp_path, redis_url, prefix):
    result = manage(tmp_path, {"URL": redis_url, "PREFIX": prefix}, "bullmq_retry", "emails", "404")
    assert result.returncode == 1
    assert result.stderr.strip() == "job 404: not found in queue 'emails'"
    assert "CommandError" not in result.stderr


def test_stats_command_on_unreachable_redis_is_one_line_soon(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = manage(tmp_path, {"URL": url, "QUEUES": ["emails"]}, "bullmq_stats")
    assert time.monotonic() - started < 15
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"CommandError: could not reach Redis at {url} (")


def test_stats_command_uses_settings_queues(tmp_path, redis_url, prefix):
    result = manage(tmp_path, {"URL": redis_url, "PREFIX": prefix, "QUEUES": ["a", "b"]}, "bullmq_stats")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["QUEUE", "a", "b"]
