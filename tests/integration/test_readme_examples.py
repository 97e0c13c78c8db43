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


@pytest.mark.skipif(
    "telemetry" not in __import__("bullmq_sync.options").options.SUPPORTED_OPTIONS,
    reason="Queue.add accepts the telemetry option once the Node-shaped options land",
)
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


DJANGO_README = r"""
import sys
import django
from django.conf import settings
settings.configure(
    SECRET_KEY="readme", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF="readme_urls",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "bullmq_sync.contrib.django"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    BULLMQ={"URL": sys.argv[1]},
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.test import Client
client = Client(enforce_csrf_checks=True)
assert client.get("/queues/").status_code == 302
client.force_login(User.objects.create_user("ops", is_staff=True))
page = client.get("/queues/queue", {"name": "emails", "state": "failed"})
assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content, page.status_code
print("ok")
"""


def test_dashboard_django_urls_example(localhost, tmp_path):
    pytest.importorskip("django")
    pytest.importorskip("jinja2")
    import os
    import subprocess
    import sys

    put_job(localhost.raw, "bull", "emails", "1")
    (tmp_path / "readme_urls.py").write_text(block('include("bullmq_sync.contrib.django.dashboard_urls")'))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_README, localhost.url],
        capture_output=True, text=True, env=env, cwd=root, timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
