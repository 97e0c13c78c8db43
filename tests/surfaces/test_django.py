"""The Django app under Django's test machinery (settings, transactions, call_command)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

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

from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.db import transaction
from django.test import TestCase, override_settings
from jobfactory import put_job

from bullmq_sync import InvalidArgument, Queue
from bullmq_sync.contrib.django import enqueue_on_commit, get_connection, get_queue


@pytest.fixture
def bullmq_settings(redis_url: str, prefix: str) -> Iterator[dict[str, object]]:
    config = {"URL": redis_url, "PREFIX": prefix, "MAX_CONNECTIONS": 4}
    with override_settings(BULLMQ=config):
        yield config


@pytest.fixture
def signups() -> Iterator[None]:
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS signup (email TEXT)")
        cursor.execute("DELETE FROM signup")
    yield


def signup(email: str) -> str:
    """A view-like function: store the row and enqueue the welcome email on commit."""
    with transaction.atomic():
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO signup (email) VALUES (%s)", [email])
        return enqueue_on_commit("emails", "welcome", {"to": email}, attempts=3)


def test_get_queue_is_cached_on_one_pool_per_process(bullmq_settings, prefix, raw):
    emails = get_queue("emails")
    assert emails is get_queue("emails")
    assert emails.prefix == prefix and isinstance(emails, Queue)
    assert get_queue("sms").connection is emails.connection is get_connection()

    def produce(n: int) -> None:
        for i in range(25):
            get_queue("emails").add("bulk", {"n": n, "i": i})

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert raw.llen(f"{prefix}:emails:wait") == 300
    assert 1 <= get_connection().pool.peak_in_use <= 4


def test_settings_change_rebuilds_the_pool(bullmq_settings, redis_url, prefix):
    before = get_connection()
    with override_settings(BULLMQ={"URL": redis_url, "PREFIX": prefix + "x"}):
        assert get_queue("emails").prefix == prefix + "x"
        assert get_connection() is not before
    assert before.closed


def test_enqueue_on_commit_returns_the_id_and_adds_after_commit(
    bullmq_settings, prefix, raw, signups
):
    seen_inside: list[bool] = []
    with transaction.atomic():
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO signup (email) VALUES (%s)", ["a@example.com"])
        job_id = enqueue_on_commit("emails", "welcome", {"to": "a@example.com"}, attempts=3)
        seen_inside.append(bool(raw.exists(f"{prefix}:emails:{job_id}")))
    assert seen_inside == [False]
    assert uuid.UUID(job_id).version == 4
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == [job_id]
    job = get_queue("emails").get_job(job_id)
    assert job is not None and job.data == {"to": "a@example.com"} and job.opts["attempts"] == 3


def test_rollback_adds_nothing(bullmq_settings, prefix, raw, signups):
    ids: list[str] = []
    with pytest.raises(RuntimeError), transaction.atomic():
        ids.append(enqueue_on_commit("emails", "welcome", {"to": "b@example.com"}))
        raise RuntimeError("payment declined")
    assert len(ids) == 1
    assert raw.keys(f"{prefix}:*") == []
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM signup")
        assert cursor.fetchone() == (0,)


def test_nested_savepoint_rollback_drops_only_its_job(bullmq_settings, prefix, raw):
    with transaction.atomic():
        kept = enqueue_on_commit("emails", "kept", {})
        try:
            with transaction.atomic():
                enqueue_on_commit("emails", "dropped", {})
                raise ValueError
        except ValueError:
            pass
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == [kept]


def test_outside_a_transaction_adds_at_once_and_custom_ids(bullmq_settings, prefix, raw):
    job_id = enqueue_on_commit("emails", "now", {"x": 1}, job_id="order-42")
    assert job_id == "order-42"
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == ["order-42"]
    other = enqueue_on_commit(get_queue("emails"), "camel", {}, jobId="order-43", delay=60000)
    assert other == "order-43" and raw.zcard(f"{prefix}:emails:delayed") == 1


def test_views_from_many_threads(bullmq_settings, prefix, raw, signups):
    ids = [signup(f"user{n}@example.com") for n in range(20)]
    assert sorted(raw.lrange(f"{prefix}:emails:wait", 0, -1)) == sorted(ids)


def test_bad_input_is_refused_before_anything(bullmq_settings, prefix, raw):
    with transaction.atomic():
        with pytest.raises(InvalidArgument):
            enqueue_on_commit("emails", "x", {"when": object()})
        with pytest.raises(InvalidArgument):
            enqueue_on_commit(42, "x", {})  # type: ignore[arg-type]
    assert raw.keys(f"{prefix}:*") == []


@pytest.mark.parametrize(
    "bad",
    [{"URL": 5}, {"MAX_CONNECTIONS": 0}, {"PREFIX": ""}, {"HOST": "x"}, ["URL"]],
)
def test_bad_settings_are_improperly_configured(bad):
    with override_settings(BULLMQ=bad), pytest.raises(ImproperlyConfigured):
        get_queue("emails")


def test_management_commands(bullmq_settings, prefix, raw):
    for job_id in ("1", "2", "3"):
        put_job(raw, prefix, "emails", job_id, state="failed")
    out = io.StringIO()
    call_command("bullmq_stats", "emails", "sms", "--json", stdout=out)
    stats = json.loads(out.getvalue())
    assert stats["emails"]["failed"] == 3 and stats["sms"]["failed"] == 0

    out = io.StringIO()
    call_command("bullmq_stats", "emails", stdout=out)
    header, row = out.getvalue().splitlines()
    assert header.split()[0] == "QUEUE" and row.split()[0] == "emails"

    out = io.StringIO()
    call_command("bullmq_retry", "emails", "1", stdout=out)
    assert out.getvalue().strip() == "moved 1, skipped 0, errors 0"

    out = io.StringIO()
    call_command("bullmq_retry", "emails", "--all", "--dry-run", stdout=out)
    assert "would move 2 failed job(s)" in out.getvalue()

    out = io.StringIO()
    call_command("bullmq_retry", "emails", "--all", "--yes", stdout=out)
    assert out.getvalue().strip() == "moved 2, skipped 0, errors 0"
    assert raw.zcard(f"{prefix}:emails:failed") == 0
    assert sorted(raw.lrange(f"{prefix}:emails:wait", 0, -1)) == ["1", "2", "3"]

    with pytest.raises(CommandError) as info:
        call_command("bullmq_retry", "emails", "404", stdout=io.StringIO())
    assert info.value.returncode == 1


@pytest.mark.parametrize(
    "how",
    [["-c", "2"], ["--processes", "2"], ["-c", "2", "--default-scheduling"]],
    ids=["threads", "processes", "threads-default-scheduling"],
)
def test_bullmq_worker_command(redis_url, prefix, tmp_path, how):
    (tmp_path / "dj_tasks.py").write_text(
        textwrap.dedent("""
        def welcome(job):
            if job.data["to"] == "nobody":
                raise LookupError("no such mailbox")
            return "sent to " + job.data["to"]
    """)
    )
    (tmp_path / "run_worker.py").write_text(
        textwrap.dedent(f"""
        import django
        from django.conf import settings

        if __name__ == "__main__":  # as manage.py: child processes (spawn) import this module
            settings.configure(
                INSTALLED_APPS=["bullmq_sync.contrib.django"],
                BULLMQ={{"URL": {redis_url!r}, "PREFIX": {prefix!r}}},
            )
            django.setup()
            from django.core.management import call_command
            call_command("bullmq_worker", "dj_tasks:welcome", "--queue", "emails", *{how!r})
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, "run_worker.py"],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    try:
        with override_settings(BULLMQ={"URL": redis_url, "PREFIX": prefix}):
            job_id = enqueue_on_commit("emails", "welcome", {"to": "c@example.com"})
            queue = get_queue("emails")
            deadline = time.monotonic() + 20
            while str(queue.get_job_state(job_id)) != "completed" and time.monotonic() < deadline:
                time.sleep(0.1)
            job = queue.get_job(job_id)
            assert job is not None and job.return_value == "sent to c@example.com"
            if hasattr(os, "SCHED_BATCH"):  # job threads: SCHED_BATCH unless told otherwise
                batch = "--default-scheduling" not in how
                assert (os.SCHED_BATCH in _thread_policies(proc.pid)) is batch
            bad = queue.add("welcome", {"to": "nobody"})
            while str(queue.get_job_state(bad.id)) != "failed" and time.monotonic() < deadline:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "worker stopped after 2 job(s)" in stdout
    # Each job is logged by the command (LOGGING routes bullmq_sync nowhere here).
    completed = [line for line in stderr.splitlines() if "job.completed" in line]
    failed = [line for line in stderr.splitlines() if "job.failed" in line]
    assert len(completed) == 1 and len(failed) == 1, stderr
    assert "LookupError" in failed[0] and "no such mailbox" in failed[0]
    assert "nobody" not in stderr  # job data is never logged


class EnqueueOnCommitTestCase(TestCase):
    """The same contract inside Django's own TestCase (each test in a transaction)."""

    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, prefix: str, raw) -> Iterator[None]:
        self.prefix = prefix
        self.raw = raw
        with override_settings(BULLMQ={"URL": redis_url, "PREFIX": prefix}):
            yield

    def test_callbacks_run_on_commit(self) -> None:
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            job_id = enqueue_on_commit("emails", "welcome", {"to": "d@example.com"})
        self.assertEqual(len(callbacks), 1)
        self.assertFalse(self.raw.exists(f"{self.prefix}:emails:{job_id}"))
        callbacks[0]()
        self.assertEqual(self.raw.lrange(f"{self.prefix}:emails:wait", 0, -1), [job_id])

    def test_execute_true_adds_the_job(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            job_id = enqueue_on_commit("emails", "welcome", {"to": "e@example.com"})
        job = get_queue("emails").get_job(job_id)
        assert job is not None
        self.assertEqual(job.name, "welcome")


def _thread_policies(pid: int) -> set[int]:
    """The scheduling policies of a process's threads (Linux)."""
    policies = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            policies.add(os.sched_getscheduler(int(tid)))
        except ProcessLookupError:  # the thread ended meanwhile
            pass
    return policies
