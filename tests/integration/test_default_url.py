"""One rule for the default Redis: $REDIS_URL if set, else redis://localhost:6379."""

from __future__ import annotations

import redis

from bullmq_sync import Connection, Queue
from bullmq_sync.connection import DEFAULT_URL, default_url


def test_queue_without_a_connection_honours_redis_url(local_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", local_redis.url)
    with Queue("q", prefix="envtest") as queue:
        job = queue.add("n", {"x": 1})
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    assert raw.lrange("envtest:q:wait", 0, -1) == [job.id]


def test_the_rule(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert default_url() == DEFAULT_URL == "redis://localhost:6379"
    assert repr(Connection()) == "<Connection redis://localhost:6379>"
    monkeypatch.setenv("REDIS_URL", "")
    assert default_url() == DEFAULT_URL
    monkeypatch.setenv("REDIS_URL", "redis://:pw@elsewhere:6390/2")
    assert repr(Connection()) == "<Connection redis://:***@elsewhere:6390/2>"


def test_flask_default_follows_the_rule(monkeypatch):
    from flask import Flask

    from bullmq_sync.contrib.flask import BullMQ

    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6390")
    app = Flask("t")
    BullMQ(app)
    assert app.config["BULLMQ_URL"] == "redis://elsewhere:6390"
