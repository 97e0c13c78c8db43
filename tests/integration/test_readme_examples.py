"""The README's Python examples run as written (on a private Redis standing in for localhost)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
from helpers import default_sigint
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


@pytest.mark.parametrize(
    "marker,state,moved",
    [
        ("Job.from_id(queue", "failed", True),
        ("Job.from_id(queue", "wait", False),
        ("Job.fromId(queue", "failed", True),
    ],
)
def test_retry_examples(localhost, marker, state, moved, capsys):
    """The retry examples retry a failed job (and say where a job in another state is)."""
    raw = localhost.raw
    put_job(raw, "bull", "my-queue", "job-id", state=state)
    localhost(block(marker))
    assert raw.lrange("bull:my-queue:wait", 0, -1) == ["job-id"]
    assert raw.zcard("bull:my-queue:failed") == 0
    if not moved:
        assert capsys.readouterr().out.strip() == "Job job-id is waiting, not failed. reprocessJob"


def test_connection_example_builds_without_connecting():
    ns: dict = {}
    exec(block("shared = Connection("), ns)
    assert "secret" not in repr(ns["shared"])
    assert ns["emails"].connection is ns["reports"].connection
    ns["shared"].close()


def test_node_shaped_arguments_example(localhost, capsys):
    localhost(block('parent.remove({"removeChildren": False})'))
    raw = localhost.raw
    assert list(raw.scan_iter(match="bull:shapes-demo:*")) == []  # obliterated at the end
    assert "unknown option 'removeChilden'; accepted: removeChildren" in capsys.readouterr().out


def test_producer_example(localhost):
    ns = localhost(block("queue.add_bulk("))
    raw = localhost.raw
    assert raw.llen("bull:emails:wait") == 1002  # welcome, report and 1000 pings; digest is delayed
    assert raw.zcard("bull:emails:delayed") == 1
    assert ns["job"].id == "1"


def test_worker_example(localhost):
    code = block("Worker(\"emails\", send_email")
    assert "\nworker.run()" in code
    ns = localhost(code.replace("\nworker.run()", "\nworker.start()"))  # runs in the background
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


# ---- manual processing ----------------------------------------------------------------


def test_manual_processing_example(localhost):
    ns = localhost(block("worker.get_next_job(token)"))
    raw = localhost.raw
    assert ns["job"] is None and ns["worker"].closing
    assert raw.zrange("bull:invoices:completed", 0, -1) == ["1"]
    assert raw.hget("bull:invoices:1", "returnvalue") == '"invoice-17.pdf"'
    assert raw.zrange("bull:invoices:delayed", 0, -1) == ["2"]  # its backoff before attempt 2
    assert raw.hget("bull:invoices:2", "failedReason") == "no billing address"
    assert raw.hget("bull:invoices:2", "atm") == "1" and raw.llen("bull:invoices:active") == 0


# -- flow introspection and retry_tree ---------------------------------------------------


def test_flow_introspection_example(localhost):
    ns = localhost(block("book.remove_unprocessed_children()"))
    raw = localhost.raw
    book = ns["book"]
    assert set(ns["deps"]) == {"processed", "unprocessed", "failed", "ignored"}
    assert list(ns["deps"]["processed"].values()) == [{"words": 100}]
    assert list(ns["deps"]["ignored"].values()) == ["no such page"]
    assert ns["page"]["nextUnprocessedCursor"] == 0 and len(ns["page"]["unprocessed"]) == 1
    assert len(ns["node"].children) == 3
    assert raw.lrange("bull:books:wait", 0, -1) == [book.id]
    assert raw.llen("bull:appendix:wait") == 0


def test_retry_tree_example(localhost):
    ns = localhost(block("publish.retry_tree("))
    assert [(m.queue_name, m.to_state) for m in ns["moved"]] == [
        ("build", "waiting"), ("build", "waiting-children"), ("release", "waiting-children")]
    assert localhost.raw.zscore("bull:release:completed", ns["publish"].id) is not None
    assert localhost.raw.zcard("bull:build:completed") == 2


# -- waiting for results, workers, counts and metrics ------------------------------------


def test_wait_until_finished_example(localhost, capsys):
    ns = localhost(block("def handle_request(name, width)"))
    assert capsys.readouterr().out.splitlines() == [
        "{'thumbnail': 'cat-128.png'}",
        "{'error': 'width must be positive'}",
    ]
    assert ns["events"].closed


def test_counts_workers_metrics_example(localhost, capsys):
    localhost(block("queue.export_prometheus_metrics("))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1 1 1"
    assert lines[1] == "{0: 1, 1: 1, 2: 0}"
    assert lines[2] == "0"
    assert lines[3].startswith("bull:cmVwb3J0cw==:w:reporter-1 127.0.0.1:")
    metrics = "\n".join(lines[4:])
    assert metrics.startswith("# HELP bullmq_job_count Number of jobs in the queue by state")
    assert 'bullmq_job_count{queue="reports", state="delayed", env="prod"} 1' in metrics
    assert 'bullmq_job_count{queue="reports", state="completed", env="prod"} 2' in metrics


def test_telemetry_example(localhost, capsys):
    pytest.importorskip("opentelemetry.sdk")
    localhost(block("telemetry.inject()"))
    metadata, result = capsys.readouterr().out.splitlines()
    assert metadata.startswith('{"traceparent":"00-') and result == "{'charged': 7}"


# -- Dashboard ------------------------------------------------------------------------------


def test_dashboard_flask_example(localhost):
    pytest.importorskip("jinja2")
    put_job(localhost.raw, "bull", "emails", "1")
    ns = localhost(block("bullmq.init_dashboard(app"))
    client = ns["app"].test_client()
    assert client.get("/queues/").status_code == 403
    with client.session_transaction() as session:
        session["role"] = "admin"
    page = client.get("/queues/queue?name=emails&state=failed")
    assert page.status_code == 200 and 'href="/queues/job?queue=emails&amp;id=1"' in page.text


def test_dashboard_wsgi_example(localhost):
    pytest.importorskip("jinja2")
    from werkzeug.test import Client

    for name in ("emails", "billing-eu", "secret"):
        put_job(localhost.raw, "bull", name, "1")
        localhost.raw.set(f"bull:{name}:id", 1)
    ns = localhost(block("app = Dashboard("))
    overview = Client(ns["app"]).get("/")
    assert overview.status_code == 200
    assert "billing-eu" in overview.text and "secret" not in overview.text
    assert "csrf_token" not in Client(ns["app"]).get("/job?queue=emails&id=1").text  # read-only


DJANGO_STAFF_CHECK = r"""
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
client = Client(enforce_csrf_checks=True)
assert client.get("/queues/").status_code == 302
client.force_login(User.objects.create_user("ops", is_staff=True))
page = client.get("/queues/queue", {"name": "emails", "state": "failed"})
assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content, page.status_code
client.force_login(User.objects.create_user("guest"))
assert client.get("/queues/").status_code == 403
print("ok")
"""


def test_dashboard_django_example(localhost, tmp_path):
    """The Django block, then a staff user sees a queue page with Django's CSRF token."""
    pytest.importorskip("django")
    pytest.importorskip("jinja2")
    put_job(localhost.raw, "bull", "emails", "1")
    code = block('include("bullmq_sync.contrib.django.dashboard_urls")') + DJANGO_STAFF_CHECK
    returncode, out, err, _ = run_block(code, localhost.url, tmp_path)
    assert returncode == 0 and out.split() == ["302", "ok"], err


# -- every block, as written ---------------------------------------------------------------
#
# Each ```python block of README.md runs as a script in its own process, as a reader would
# run it: `redis://localhost:6379` (written out, or the default `Queue("q")` uses) points at a
# private server through REDIS_URL and a literal swap. A block must end by itself, except a
# long-running worker (`.run(`), which gets Ctrl-C after a grace period like a user would
# press it; either way it must exit 0 without a traceback.

ROOT = Path(__file__).resolve().parents[2]
RUN_GRACE_S = 4.0
"""Seconds a block calling ``.run(`` runs before it gets SIGINT (Ctrl-C)."""
BLOCK_TIMEOUT_S = 60.0


def readme_blocks() -> list[tuple[str, str]]:
    """``(id, code)`` of every python block: id = its number, ``##`` heading and first line."""
    found = []
    heading = "top"
    number = 0
    for match in re.finditer(r"^(#{2,3} [^\n]*)$|^```python\n(.*?)^```", README, re.S | re.M):
        if match.group(1):
            heading = match.group(1).lstrip("#").strip()
            continue
        number += 1
        code = match.group(2)
        first = next((line.strip() for line in code.splitlines() if line.strip()), "")
        found.append((f"{number:02d} [{heading}] {first[:50]}", code))
    return found


def run_block(code: str, url: str, tmp_path: Path) -> tuple[int, str, str, bool]:
    """Run ``code`` as a script; returns (exit code, stdout, stderr, needed Ctrl-C)."""
    import os
    import signal
    import subprocess
    import sys

    for _, other in readme_blocks():  # a block opening with "# tasks.py" is a module to save
        named = re.match(r"# ([\w-]+\.py)\n", other)
        if named:
            (tmp_path / named.group(1)).write_text(other.replace("redis://localhost:6379", url))
    script = tmp_path / "readme_block.py"
    script.write_text(code.replace("redis://localhost:6379", url))
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    interrupted = False
    try:
        if ".run(" in code:
            try:
                out, err = proc.communicate(timeout=RUN_GRACE_S)
            except subprocess.TimeoutExpired:
                interrupted = True
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=BLOCK_TIMEOUT_S)
        else:
            out, err = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the block did not end within {BLOCK_TIMEOUT_S} s\n{err[-3000:]}")
    return proc.returncode, out, err, interrupted


@pytest.mark.parametrize(
    "code", [c for _, c in readme_blocks()], ids=[i for i, _ in readme_blocks()]
)
def test_every_readme_block_runs_as_written(code, local_redis, tmp_path):
    returncode, out, err, _ = run_block(code, local_redis.url, tmp_path)
    assert returncode == 0 and "Traceback" not in err, f"exit {returncode}\n{out[-2000:]}\n{err[-4000:]}"


def test_the_harness_finds_every_block():
    assert len(readme_blocks()) == README.count("```python")
    ids = [i for i, _ in readme_blocks()]
    assert len(set(ids)) == len(ids)

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

    (tmp_path / "tasks.py").write_text(block("def make_thumbnail(job)"))  # "# tasks.py"
    script = block('"tasks:make_thumbnail"').replace("redis://localhost:6379", localhost.url)
    (tmp_path / "thumbnails.py").write_text(script)
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "thumbnails.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": root},
    )
    assert result.returncode == 0, result.stderr
    printed = eval(result.stdout.strip())
    assert len(printed) == 4 and all(len(r) == 16 for r in printed)
    raw = localhost.raw
    assert raw.zcard("bull:thumbnails:completed") == 4
    assert raw.lrange("bull:thumbnails:1:logs", 0, -1) == ["thumbnail ready"]


def test_manual_rate_limit_example(localhost, capsys):
    ns = localhost(block("def call_api(job)"))
    assert ns["calls"][1] - ns["calls"][0] >= 0.45
    assert capsys.readouterr().out.startswith("called again after ")
    assert localhost.raw.hget("bull:api:1", "atm") == "1"
