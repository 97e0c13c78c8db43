"""The dashboard without a browser: CSRF, read-only, visibility, the three mounts (Flask
blueprint, Django view, ``bullmq-sync dashboard``), basic auth and password redaction."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from dashboard_support import ROOT, fill_failed, serve
from jobfactory import put_job

from bullmq_sync import Connection, Queue

pytest.importorskip("jinja2")
from werkzeug.test import Client  # noqa: E402

from bullmq_sync.dashboard import Dashboard  # noqa: E402


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@pytest.fixture
def app(redis_url, prefix):
    with Connection(redis_url) as connection:
        yield Dashboard(connection, prefix, secret="test-secret")


def test_actions_need_the_signed_token_and_same_origin(app, raw, prefix, log_events):
    put_job(raw, prefix, "q", "1")
    client = Client(app)
    page = client.get("/job?queue=q&id=1")
    assert page.status_code == 200
    token = token_of(page.text)
    form = {"queue": "q", "action": "retry", "id": "1", "state": "failed"}

    assert client.post("/action", data=form).status_code == 403  # no token
    assert client.post("/action", data={**form, "csrf_token": "0" * 64}).status_code == 403
    stranger = Client(app)  # another browser: no cookie
    assert stranger.post("/action", data={**form, "csrf_token": token}).status_code == 403
    cross = client.post(
        "/action", data={**form, "csrf_token": token}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    assert client.get("/action").status_code == 405  # actions are POST only
    assert raw.zscore(f"{prefix}:q:failed", "1") is not None

    done = client.post("/action", data={**form, "csrf_token": token})
    assert done.status_code == 303
    assert done.headers["Location"] == f"/job?queue=q&id=1&done=retry"
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    retried = [e for e in log_events if e["event"] == "job.retried"]
    assert [(e["queue"], e["job_id"]) for e in retried] == [("q", "1")]
    refused = [e for e in log_events if e["event"] == "dashboard.action_refused"]
    assert {e["reason"] for e in refused} == {"csrf"}

    # the same retry again is refused by the library (exactly once), not repeated
    again = client.post("/action", data={**form, "csrf_token": token})
    assert again.status_code == 409 and "JobNotInState" in again.text


def test_each_action_is_the_library_call(app, raw, prefix, redis_url):
    client = Client(app)
    token = token_of(client.get("/queue?name=q").text)
    queue = Queue("q", connection=redis_url, prefix=prefix)
    post = lambda **form: client.post("/action", data={"queue": "q", "csrf_token": token, **form})  # noqa: E731

    delayed = queue.add("later", {}, delay=600_000)
    assert post(action="promote", id=delayed.id).status_code == 303
    assert queue.get_job_state(delayed.id) == "waiting"
    assert post(action="priority", id=delayed.id, priority="7").status_code == 303
    assert queue.get_job_state(delayed.id) == "prioritized"
    assert post(action="priority", id=delayed.id, priority="x").status_code == 400
    assert post(action="pause").status_code == 303 and queue.is_paused()
    assert post(action="resume").status_code == 303 and not queue.is_paused()
    assert post(action="remove", id=delayed.id).status_code == 400  # needs confirmation
    assert post(action="remove", id=delayed.id, confirm="yes").status_code == 303
    assert queue.get_job(delayed.id) is None

    for i in range(3):
        put_job(raw, prefix, "q", f"c{i}", state="completed")
    assert post(action="retry-all-completed").status_code == 400
    moved = post(action="retry-all-completed", confirm="yes")
    assert moved.headers["Location"].endswith("done=retry-all-completed&n=3")
    for i in range(2):
        put_job(raw, prefix, "q", f"d{i}", state="delayed")
    assert "n=2" in post(action="promote-all", confirm="yes").headers["Location"]
    for i in range(4):
        put_job(raw, prefix, "q", f"f{i}", state="failed")
    cleaned = post(action="clean", state="failed", age="0", unit="s", confirm="yes")
    assert cleaned.headers["Location"].endswith("done=clean&n=4")
    assert raw.zcard(f"{prefix}:q:failed") == 0
    assert post(action="clean", state="active", age="0", confirm="yes").status_code == 400
    assert post(action="explode").status_code == 404
    page = client.get("/queue?name=q&state=waiting&done=clean&n=4")
    assert "Jobs cleaned: 4." in page.text


def test_bulk_retry_streams_progress_per_batch(app, raw, prefix):
    fill_failed(raw, prefix, "q", 2500)
    client = Client(app)
    token = token_of(client.get("/confirm?queue=q&action=retry-all").text)
    response = client.post(
        "/action",
        data={
            "queue": "q",
            "action": "retry-all",
            "confirm": "yes",
            "total": "2500",
            "csrf_token": token,
        },
        headers={"Accept": "application/x-ndjson"},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["moved"] for line in lines] == [0, 1000, 2000, 2500, 2500]
    assert lines[-1]["done"] is True
    assert raw.llen(f"{prefix}:q:wait") == 2500


def test_visibility_filter_and_read_only(redis_url, raw, prefix):
    put_job(raw, prefix, "public", "1")
    put_job(raw, prefix, "secret", "1")
    raw.set(f"{prefix}:public:id", 1)
    raw.set(f"{prefix}:secret:id", 1)
    with Connection(redis_url) as connection:
        app = Dashboard(connection, prefix, queues=["pub*"], read_only=True)
        client = Client(app)
        overview = client.get("/").text
        assert "public" in overview and "secret" not in overview
        assert client.get("/queue?name=secret").status_code == 404
        assert client.get("/job?queue=secret&id=1").status_code == 404
        assert client.get("/events?queue=secret").status_code == 404
        assert "csrf_token" not in client.get("/job?queue=public&id=1").text
        refused = client.post("/action", data={"queue": "public", "action": "retry", "id": "1"})
        assert refused.status_code == 403
        assert client.get("/confirm?queue=public&action=retry-all").status_code == 403
    assert raw.zcard(f"{prefix}:public:failed") == 1


def test_live_events_stream_counts(app, raw, prefix, redis_url):
    put_job(raw, prefix, "q", "1")
    app.sse_lifetime = 3.0
    queue = Queue("q", connection=redis_url, prefix=prefix)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/events", "QUERY_STRING": "queue=q&job=1"}
    body = iter(app(environ, lambda status, headers: None))
    assert next(body).startswith(b"retry:")
    import threading
    import time

    def later() -> None:
        time.sleep(0.5)
        queue.get_job("1").retry()

    threading.Thread(target=later).start()
    message = next(part for part in body if part.startswith(b"data:"))
    payload = json.loads(message[5:])
    assert payload["queue"] == "q" and payload["counts"]["waiting"] == 1
    assert payload["job"] == {"id": "1", "state": "waiting"}
    assert any(e["event"] == "waiting" for e in payload["events"])


# -- Flask --------------------------------------------------------------------------------


def test_flask_blueprint_behind_the_auth_callable(redis_url, prefix, raw):
    from flask import Flask, request

    from bullmq_sync.contrib.flask import BullMQ

    put_job(raw, prefix, "emails", "1")
    app = Flask(__name__)
    app.config.update(BULLMQ_URL=redis_url, BULLMQ_PREFIX=prefix, SECRET_KEY="s")
    bullmq = BullMQ(app)
    bullmq.init_dashboard(
        app, url_prefix="/admin/queues", auth=lambda: request.headers.get("X-Admin") == "yes"
    )
    client = app.test_client()
    assert client.get("/admin/queues/").status_code == 403
    headers = {"X-Admin": "yes"}
    page = client.get("/admin/queues/job?queue=emails&id=1", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/admin/queues/static/dashboard.css"' in html
    assert 'action="/admin/queues/action"' in html
    assert client.get("/admin/queues/static/dashboard.js", headers=headers).status_code == 200
    form = {"queue": "emails", "action": "retry", "id": "1", "csrf_token": token_of(html)}
    assert client.post("/admin/queues/action", data=form).status_code == 403  # auth first
    done = client.post("/admin/queues/action", data=form, headers=headers)
    assert done.status_code == 303
    assert done.headers["Location"].startswith("/admin/queues/job?queue=emails&id=1")
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == ["1"]


def test_flask_dashboard_needs_init_app_and_auth():
    from flask import Flask

    from bullmq_sync.contrib.flask import BullMQ
    from bullmq_sync.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        BullMQ().init_dashboard(Flask(__name__), auth=lambda: True)
    app = Flask(__name__)
    with pytest.raises(ConfigurationError):
        BullMQ(app).init_dashboard(app, auth=None)  # type: ignore[arg-type]


# -- Django (its own process: settings with auth, sessions and CSRF middleware) -------------

DJANGO_SCRIPT = r"""
import json, re, sys
import django
from django.conf import settings
settings.configure(
    DEBUG=False,
    SECRET_KEY="test",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF="django_dashboard_urls",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "bullmq_sync.contrib.django"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    LOGIN_URL="/login/",
    BULLMQ={"URL": sys.argv[1], "PREFIX": sys.argv[2]},
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.test import Client
User.objects.create_user("staff", password="pw", is_staff=True)
User.objects.create_user("plain", password="pw")
out = {}
anonymous = Client(enforce_csrf_checks=True)
r = anonymous.get("/queues/")
out["anonymous"] = [r.status_code, r.headers.get("Location", "")]
plain = Client(enforce_csrf_checks=True)
plain.login(username="plain", password="pw")
out["plain"] = plain.get("/queues/").status_code
staff = Client(enforce_csrf_checks=True)
staff.login(username="staff", password="pw")
page = staff.get("/queues/job", {"queue": "emails", "id": "1"})
html = page.content.decode()
out["staff"] = page.status_code
out["static"] = staff.get("/queues/static/dashboard.js").status_code
out["form_action"] = 'action="/queues/action"' in html
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
form = {"queue": "emails", "action": "retry", "id": "1", "state": "failed"}
out["no_token"] = staff.post("/queues/action", form).status_code
r = staff.post("/queues/action", {**form, "csrfmiddlewaretoken": token})
out["with_token"] = [r.status_code, r.headers.get("Location", "")]
print(json.dumps(out))
"""


def test_django_view_is_staff_only_and_uses_djangos_csrf(redis_url, prefix, raw, tmp_path):
    pytest.importorskip("django")
    put_job(raw, prefix, "emails", "1")
    (tmp_path / "django_dashboard_urls.py").write_text(
        textwrap.dedent(
            """
            from django.urls import include, path
            urlpatterns = [path("queues/", include("bullmq_sync.contrib.django.dashboard_urls"))]
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_SCRIPT, redis_url, prefix],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["anonymous"][0] == 302 and out["anonymous"][1].startswith("/login/?next=/queues/")
    assert out["plain"] == 403
    assert out["staff"] == 200 and out["static"] == 200 and out["form_action"]
    assert out["no_token"] == 403
    assert out["with_token"] == [303, "/queues/job?queue=emails&id=1&done=retry"]
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == ["1"]


# -- standalone -----------------------------------------------------------------------------


def fetch(url: str, auth: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_standalone_basic_auth_and_the_password_is_never_rendered(local_redis, prefix):
    import redis

    client = redis.Redis(port=local_redis.port)
    put_job(client, prefix, "q", "1")
    client.set(f"{prefix}:q:id", 1)
    client.config_set("requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{local_redis.port}"
    env = {"BULLMQ_DASHBOARD_AUTH": "admin:letmein"}
    with serve(url, prefix, env=env) as server:
        assert fetch(server.base + "/")[0] == 401
        assert fetch(server.base + "/", "admin:wrong")[0] == 401
        pages = [
            fetch(server.base + path, "admin:letmein")
            for path in ("/", "/queue?name=q", "/job?queue=q&id=1")
        ]
        assert [status for status, _ in pages] == [200, 200, 200]
        assert all("s3cret-pw" not in body for _, body in pages)
        assert "q" in pages[0][1]
    output = server.stop()
    assert "s3cret-pw" not in output and "127.0.0.1" in output


def test_standalone_without_url_serves_an_embedded_redis(prefix):
    """...and SIGTERM (what ``serve`` stops it with, as docker and systemd do) stops that
    redis-server too: before, the default SIGTERM ended the process and left it running."""
    import socket

    with serve(None, prefix) as server:
        assert "embedded redis-server" in server.first_line
        status, body = fetch(server.base + "/")
        assert status == 200 and "No BullMQ queues" in body
        port = int(re.search(r"127\.0\.0\.1:(\d+)", server.first_line).group(1))
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # it is up
    assert server.process.returncode is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_standalone_usage_errors():
    from bullmq_sync.cli import main

    assert main(["dashboard", "--port", "70000"]) == 2
    assert main(["dashboard", "--port", "0"]) == 2


def test_redis_down_is_a_503_page_not_a_crash(local_redis, prefix):
    with Connection(local_redis.url) as connection:
        client = Client(Dashboard(connection, prefix))
        assert client.get("/").status_code == 200
        local_redis.kill()
        down = client.get("/queue?name=q")
        assert down.status_code == 503 and "Redis is not answering" in down.text
        assert local_redis.url.rsplit(":", 1)[1] not in down.text  # no address, no password


def test_redis_down_answers_within_the_interactive_budget_not_the_connection_s(local_redis, prefix):
    """A page gives up after the short interactive budget, not the app's long retry budget."""
    import time

    with Connection(local_redis.url, retry_budget=120.0) as connection:
        client = Client(Dashboard(connection, prefix))
        assert client.get("/").status_code == 200
        local_redis.kill()
        begun = time.monotonic()
        assert client.get("/queue?name=q").status_code == 503
        assert time.monotonic() - begun < 60  # a 120 s budget would still be retrying


def test_live_streams_are_capped_and_slots_come_back(redis_url, prefix):
    with Connection(redis_url) as connection:
        app = Dashboard(connection, prefix, max_streams=2, sse_lifetime=0.1)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/events", "QUERY_STRING": "queue=q"}
        first = app(dict(environ), lambda status, headers: None)
        second = app(dict(environ), lambda status, headers: None)
        busy = app(dict(environ), lambda status, headers: None)
        assert b"".join(busy) == b"retry: 15000\n\n"  # told to come back later
        first.close()  # the browser left before the first byte
        assert list(app(dict(environ), lambda status, headers: None))[0].startswith(b"retry: 1000")
        second.close()


def test_a_huge_payload_is_cut_on_the_job_page(app, raw, prefix):
    put_job(raw, prefix, "q", "1")
    raw.hset(f"{prefix}:q:1", "data", json.dumps({"blob": "x" * 1_000_000}))
    page = Client(app).get("/job?queue=q&id=1")
    assert page.status_code == 200 and len(page.text) < 300_000
    assert "more characters not shown)" in page.text
