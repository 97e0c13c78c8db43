"""The Flask extension in a real Flask app, under concurrent threaded requests, real Redis."""

from __future__ import annotations

import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask, request
from jobfactory import put_job
from werkzeug.serving import make_server

from bullmq_sync import ConfigurationError, Connection, Queue
from bullmq_sync.contrib.flask import BullMQ


def create_app(redis_url: str, prefix: str, bullmq: BullMQ) -> Flask:
    """An application factory, the way the README shows it."""
    app = Flask("shop")
    app.config["BULLMQ_URL"] = redis_url
    app.config["BULLMQ_PREFIX"] = prefix
    app.config["BULLMQ_MAX_CONNECTIONS"] = 4
    bullmq.init_app(app)

    @app.post("/signup")
    def signup() -> dict[str, str]:
        job = bullmq.queue("emails").add("welcome", {"to": request.form["email"]})
        return {"job": job.id}

    @app.get("/emails/<job_id>")
    def email_status(job_id: str) -> dict[str, object]:
        queue = bullmq.queue("emails")
        job = queue.get_job(job_id)
        return {"state": str(queue.get_job_state(job_id)), "data": job.data if job else None}

    return app


def test_concurrent_threaded_requests_share_one_pool(redis_url, prefix, raw):
    bullmq = BullMQ()
    app = create_app(redis_url, prefix, bullmq)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    def signup(n: int) -> str:
        body = f"email=user{n}@example.com".encode()
        with urllib.request.urlopen(f"{base}/signup", data=body, timeout=30) as reply:
            return str(json.load(reply)["job"])

    def status(job_id: str) -> dict[str, object]:
        with urllib.request.urlopen(f"{base}/emails/{job_id}", timeout=30) as reply:
            return dict(json.load(reply))

    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            ids = list(pool.map(signup, range(200)))
            states = list(pool.map(status, ids))
    finally:
        server.shutdown()
        thread.join(5)
    assert len(set(ids)) == 200
    assert sorted(raw.lrange(f"{prefix}:emails:wait", 0, -1), key=int) == sorted(ids, key=int)
    assert {s["state"] for s in states} == {"waiting"}
    assert sorted(str(s["data"]["to"]) for s in states) == sorted(  # type: ignore[index]
        f"user{n}@example.com" for n in range(200)
    )
    state = app.extensions["bullmq"]
    assert isinstance(state.connection, Connection)
    pool_ = state.connection.pool
    assert pool_.max_connections == 4
    assert 1 <= pool_.peak_in_use <= 4  # 24 client threads, never more than 4 sockets
    with app.app_context():
        assert bullmq.queue("emails") is bullmq.queue("emails")
        assert bullmq.connection is state.connection
    state.close()


def test_two_apps_keep_separate_settings(redis_url, prefix):
    bullmq = BullMQ()
    first = create_app(redis_url, prefix, bullmq)
    second = create_app(redis_url, prefix + "b", bullmq)
    with first.app_context():
        one = bullmq.queue("emails")
    with second.app_context():
        two = bullmq.queue("emails")
    assert (one.prefix, two.prefix) == (prefix, prefix + "b")
    assert one.connection is not two.connection
    first.extensions["bullmq"].close()
    second.extensions["bullmq"].close()


def test_defaults_and_single_app_form(redis_url):
    app = Flask("plain")
    bullmq = BullMQ(app)
    assert app.config["BULLMQ_URL"] == "redis://localhost:6379"
    assert app.config["BULLMQ_PREFIX"] == "bull"
    assert app.config["BULLMQ_MAX_CONNECTIONS"] == 16
    # BullMQ(app) works outside an app context too (no Redis call made here).
    assert bullmq.queue("emails").qualified_name == "bull:emails"


def test_clear_error_before_init_app():
    bullmq = BullMQ()
    with pytest.raises(ConfigurationError, match="outside an application context"):
        bullmq.queue("emails")
    app = Flask("forgot")
    with app.app_context(), pytest.raises(ConfigurationError, match=r"call bullmq.init_app\(app\)"):
        bullmq.queue("emails")


def test_bad_max_connections_is_refused():
    app = Flask("bad")
    app.config["BULLMQ_MAX_CONNECTIONS"] = 0
    with pytest.raises(ConfigurationError, match="BULLMQ_MAX_CONNECTIONS"):
        BullMQ(app)


def test_flask_bullmq_cli_commands(redis_url, prefix, raw):
    app = create_app(redis_url, prefix, BullMQ())
    for job_id in ("1", "2"):
        put_job(raw, prefix, "emails", job_id, state="failed")
    runner = app.test_cli_runner()

    counts = runner.invoke(args=["bullmq", "counts", "emails", "--json"])
    assert counts.exit_code == 0, counts.output
    assert json.loads(counts.output)["failed"] == 2

    listed = runner.invoke(args=["bullmq", "jobs", "emails", "--state", "failed"])
    assert listed.exit_code == 0 and listed.output.splitlines()[0].split()[0] == "ID"

    retried = runner.invoke(args=["bullmq", "retry", "emails", "1"])
    assert retried.exit_code == 0
    assert "moved 1, skipped 0, errors 0" in retried.output
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == ["1"]

    missing = runner.invoke(args=["bullmq", "show", "emails", "404"])
    assert missing.exit_code == 1

    everything = runner.invoke(args=["bullmq", "retry", "emails", "--all", "--yes"])
    assert everything.exit_code == 0 and "moved 1, skipped 0, errors 0" in everything.output
    assert raw.zcard(f"{prefix}:emails:failed") == 0
    app.extensions["bullmq"].close()


def test_queue_objects_are_plain_public_queues(redis_url, prefix):
    app = create_app(redis_url, prefix, bullmq := BullMQ())
    with app.app_context():
        assert isinstance(bullmq.queue("emails"), Queue)
    app.extensions["bullmq"].close()
