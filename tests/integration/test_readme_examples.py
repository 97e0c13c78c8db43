"""The README's Python examples run as written (on a private Redis standing in for localhost)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
from jobfactory import put_job

import bullmq_sync.connection

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(containing: str) -> str:
    [found] = [b for b in BLOCKS if containing in b]
    return found


@pytest.fixture
def localhost(local_redis, monkeypatch):
    """Point the default URL and the README's literal URLs at a private server."""
    monkeypatch.setattr(bullmq_sync.connection, "DEFAULT_URL", local_redis.url)

    def run(code: str, **namespace) -> dict:
        code = code.replace("redis://localhost:6379", local_redis.url)
        namespace.setdefault("__name__", "readme")
        exec(compile(code, "README.md", "exec"), namespace)
        return namespace

    run.raw = redis.Redis(port=local_redis.port, decode_responses=True)  # type: ignore[attr-defined]
    run.url = local_redis.url  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize("marker", ["job.retry()                                   # failed", "Job.fromId(queue"])
def test_retry_examples(localhost, marker):
    """Each retry line of the example, with the job put back in the state that line expects."""
    raw = localhost.raw
    lines = block(marker).splitlines()
    setup = "\n".join(line for line in lines if "retry(" not in line)
    put_job(raw, "bull", "my-queue", "job-id")
    ns = localhost(setup)
    for line in (line for line in lines if "retry(" in line):
        state = "completed" if '"completed"' in line else "failed"
        raw.delete("bull:my-queue:wait", "bull:my-queue:job-id")
        put_job(raw, "bull", "my-queue", "job-id", state=state)
        exec(line, ns)
        assert raw.lrange("bull:my-queue:wait", 0, -1) == ["job-id"], line
        assert ns["job"].finished_on is None


def test_connection_example_builds_without_connecting():
    ns: dict = {}
    exec(block("shared = Connection("), ns)
    assert "secret" not in repr(ns["shared"])
    assert ns["emails"].connection is ns["reports"].connection
    ns["shared"].close()


def test_producer_example(localhost):
    ns = localhost(block("queue.add_bulk("))
    raw = localhost.raw
    assert raw.llen("bull:emails:wait") == 1002  # welcome, report and 1000 pings; digest is delayed
    assert raw.zcard("bull:emails:delayed") == 1
    assert ns["job"].id == "1"


def test_worker_example(localhost):
    code = block("Worker(\"emails\", send_email")
    ns = localhost(code.replace("worker.run()", "worker.start()"))
    raw = localhost.raw
    from bullmq_sync import Queue

    with Queue("emails", connection=localhost.url) as q:
        q.add("welcome", {"to": "ada@example.com"})
        q.add("broken", {})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        raw.zcard("bull:emails:completed") == 1 and raw.zcard("bull:emails:failed") == 1
    ):
        time.sleep(0.02)
    ns["worker"].close()
    assert raw.zcard("bull:emails:completed") == 1 and raw.zcard("bull:emails:failed") == 1
    assert raw.hget("bull:emails:2", "failedReason") == "no recipient"


# -- the worker section: events, cancelling, processes ------------------------------------------


def test_worker_events_example(localhost, capsys):
    localhost(block('worker.on("drained", drained.set)'))
    out = capsys.readouterr().out
    assert "progress 1 50" in out and "completed 1 {'pages': 12}" in out
    assert out.rstrip().endswith("worker closed")


def test_worker_cancel_example(localhost, capsys):
    localhost(block("def export_orders(job, token, signal)"))
    assert capsys.readouterr().out.splitlines() == [
        "True", "export cancelled: the user clicked cancel"]


def test_worker_processes_example(localhost, tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "tasks.py").write_text(block("def make_thumbnail(job)"))
    script = block('"tasks:make_thumbnail"').replace("redis://localhost:6379", localhost.url)
    (tmp_path / "thumbnails.py").write_text(script)
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "thumbnails.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": root},
    )
    assert result.returncode == 0, result.stderr
    printed = eval(result.stdout.strip())  # noqa: S307 - the example prints a sorted list
    assert len(printed) == 4 and all(len(r) == 16 for r in printed)
    raw = localhost.raw
    assert raw.zcard("bull:thumbnails:completed") == 4
    assert raw.lrange("bull:thumbnails:1:logs", 0, -1) == ["thumbnail ready"]


def test_manual_rate_limit_example(localhost, capsys):
    ns = localhost(block("def call_api(job)"))
    assert ns["calls"][1] - ns["calls"][0] >= 0.45
    assert capsys.readouterr().out.startswith("called again after ")
    assert localhost.raw.hget("bull:api:1", "atm") == "1"
