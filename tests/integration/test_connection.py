"""Connection forms: URLs with ACL users, unix sockets, preloading, closing."""

from __future__ import annotations

import os

import pytest
import redis
from jobfactory import put_job
from redis_server import LocalRedis, redis_server_binary

from bullmq_sync import ClientClosed, ConfigurationError, Connection, Job, Queue
from bullmq_sync.scripts import LIBRARY


@pytest.fixture
def acl_redis():
    server = LocalRedis(redis_server_binary()).start()
    admin = redis.Redis(port=server.port)
    admin.acl_setuser("app", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"], channels=["*"])
    yield server
    server.stop()


def test_acl_user_and_password_in_the_url(acl_redis, prefix):
    url = f"redis://app:s3cret@127.0.0.1:{acl_redis.port}/0"
    raw = redis.Redis(port=acl_redis.port, decode_responses=True)
    put_job(raw, prefix, "q", "1")
    with Queue("q", connection=url, prefix=prefix) as queue:
        assert "s3cret" not in repr(queue) and "s3cret" not in repr(queue.connection)
        Job.from_id(queue, "1").retry()
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]


def test_wrong_password_is_a_configuration_error(acl_redis):
    with Connection(f"redis://app:wrong@127.0.0.1:{acl_redis.port}") as connection:
        with pytest.raises(ConfigurationError):
            connection.execute("PING")


def test_unix_socket_url(tmp_path, prefix):
    sock = os.path.join(tmp_path, "redis.sock")
    server = LocalRedis(redis_server_binary(), extra=["--unixsocket", sock, "--unixsocketperm", "700"]).start()
    try:
        raw = redis.Redis(unix_socket_path=sock, decode_responses=True)
        put_job(raw, prefix, "q", "1")
        with Queue("q", connection=f"unix://{sock}", prefix=prefix) as queue:
            Job.from_id(queue, "1").retry()
        assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    finally:
        server.stop()


def test_every_script_is_preloaded_on_first_use(local_redis):
    raw = redis.Redis(port=local_redis.port)
    shas = [s.sha for s in LIBRARY.all()]
    assert not any(raw.script_exists(*shas))
    with Connection(local_redis.url) as connection:
        connection.execute("PING")
    assert all(raw.script_exists(*shas))


def test_closed_connection_raises_client_closed(redis_url):
    connection = Connection(redis_url)
    connection.close()
    connection.close()  # idempotent
    with pytest.raises(ClientClosed):
        connection.execute("PING")


def test_closed_queue_refuses_transitions(redis_url, raw, prefix):
    put_job(raw, prefix, "q", "1")
    queue = Queue("q", connection=redis_url, prefix=prefix)
    job = queue.get_job("1")
    queue.close()
    with pytest.raises(ClientClosed):
        job.retry()
    assert raw.zscore(f"{prefix}:q:failed", "1") is not None


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_resp2_and_resp3_give_the_same_results(redis_url, raw, prefix, protocol):
    import time

    from bullmq_sync import QueueEvents, Worker

    url = f"{redis_url}{'&' if '?' in redis_url else '?'}protocol={protocol}"
    with Connection(url) as connection:
        queue = Queue("q", connection=connection, prefix=prefix)
        events = QueueEvents("q", connection=connection, prefix=prefix, last_event_id="0")
        job = queue.add("work", {"n": 1}, attempts=1)
        assert queue.get_job(job.id).data == {"n": 1}
        assert queue.get_job_counts("waiting") == {"waiting": 1}

        def fail(job):
            raise RuntimeError("nope")

        with Worker("q", fail, connection=connection, prefix=prefix, drain_delay=1):
            deadline = time.monotonic() + 10
            while queue.get_job_counts("failed")["failed"] != 1 and time.monotonic() < deadline:
                time.sleep(0.02)
        queue.get_job(job.id).retry()
        assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [job.id]
        names = [e.name for e in events.iter(block=False)]
        assert names[:2] == ["added", "waiting"] and names[-1] == "waiting"
        events.close()
