"""Sentinel on real local servers: a primary, a replica and three sentinels; failover is followed
and each transition lands exactly once on the promoted replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bullmq_sync.job import retry_script_call
import redis
from cluster_servers import SentinelGroup, fabricate_failed_job, require_binaries, wait_for

from bullmq_sync import ConfigurationError, Connection, Job, Queue
from bullmq_sync.connection import FairSentinelConnectionPool, SentinelTarget

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    require_binaries()
    with SentinelGroup() as running:
        yield running


def assert_retried_once(client: redis.Redis, prefix: str, job_id: str) -> None:
    base = f"{prefix}:q:"
    assert client.lrange(base + "wait", 0, -1).count(job_id) == 1
    assert client.zscore(base + "failed", job_id) is None
    fields = client.hgetall(base + job_id)
    assert fields["name"] == "fabricated"
    assert not {"failedReason", "finishedOn", "processedOn"} & set(fields)
    waiting = [
        e
        for _, e in client.xrange(base + "events")
        if e["event"] == "waiting" and e["jobId"] == job_id
    ]
    assert len(waiting) == 1


# -- settings (no servers) ----------------------------------------------------------------


def test_sentinel_url_parsing() -> None:
    target = SentinelTarget.from_url(
        "redis+sentinel://u:p%40ss@h1:26379,h2:26380,h3/cache/2?sentinel_password=s"
    )
    assert target.sentinels == (("h1", 26379), ("h2", 26380), ("h3", 26379))
    assert target.service_name == "cache"
    assert target.redis_kwargs == {"username": "u", "password": "p@ss", "db": 2}
    assert target.sentinel_kwargs == {"password": "s"}
    assert SentinelTarget.from_url("rediss+sentinel://h:1/m").redis_kwargs == {"ssl": True}
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h:x/m", "redis+sentinel://h:1/m?nope=1"):
        with pytest.raises(ConfigurationError):
            SentinelTarget.from_url(bad)
    with pytest.raises(ConfigurationError):
        Connection.sentinel([])


def test_sentinel_repr_hides_the_password() -> None:
    connection = Connection("redis+sentinel://:hunter2@127.0.0.1:1/mymaster")
    assert "hunter2" not in repr(connection)
    assert isinstance(connection.pool, FairSentinelConnectionPool)
    connection.close()


# -- real servers -------------------------------------------------------------------------


def test_both_forms_reach_the_primary_and_every_method_works(
    group: SentinelGroup, prefix: str
) -> None:
    assert group.primary is not None
    raw = redis.Redis(port=group.primary.port, decode_responses=True)
    by_url = Connection(group.url)
    by_call = Connection.sentinel(group.addresses, service_name="mymaster", max_connections=4)
    try:
        for connection in (by_url, by_call):
            assert connection.execute("SET", f"{prefix}:k", "v") == "OK"
            assert raw.get(f"{prefix}:k") == "v"
            assert connection.pipeline([("GET", f"{prefix}:k"), ("EXISTS", f"{prefix}:nope")]) == [
                "v",
                0,
            ]
            assert isinstance(connection.client, redis.Redis)
            assert connection.client.get(f"{prefix}:k") == b"v"
            blocking = connection.dedicated(socket_timeout=2)
            assert blocking.bzpopmin(f"{prefix}:marker", timeout=0.1) is None
            blocking.close()
        with Queue("q", connection=by_url, prefix=prefix) as queue:
            for job_id in ("1", "2", "3"):
                fabricate_failed_job(raw, prefix, "q", job_id)
            Job.from_id(queue, "1").retry()  # type: ignore[union-attr]
            keys = queue.keys
            replies = by_call.run_script_many(
                "retryFinishedJob",
                [
                    retry_script_call(queue, j)
                    for j in ("2", "3")
                ],
            )
            assert replies == [[1, "waiting"], [1, "waiting"]]
            for job_id in ("1", "2", "3"):
                assert_retried_once(raw, prefix, job_id)
    finally:
        by_url.close()
        by_call.close()
        raw.close()


def test_failover_resumes_within_budget_and_applies_each_retry_exactly_once(
    group: SentinelGroup, prefix: str, log_events: list
) -> None:
    assert group.primary is not None and group.replica is not None
    old_primary, replica = group.primary, group.replica
    raw = redis.Redis(port=old_primary.port, decode_responses=True)
    ids = [str(i) for i in range(1, 31)]
    for job_id in ids:
        fabricate_failed_job(raw, prefix, "q", job_id)

    connection = Connection(group.url, retry_budget=30)
    queue = Queue("q", connection=connection, prefix=prefix)
    for job_id in ids[:10]:
        Job.from_id(queue, job_id).retry()  # type: ignore[union-attr]
    jobs = [Job.from_id(queue, job_id) for job_id in ids[10:]]
    assert raw.execute_command("WAIT", 1, 5000) == 1  # everything so far is on the replica
    raw.close()

    durations: list[float] = []
    errors: list[BaseException] = []
    started_calls = threading.Event()

    def retry_the_rest() -> None:
        for job in jobs:
            started_calls.set()
            began = time.monotonic()
            try:
                job.retry()  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)
            durations.append(time.monotonic() - began)
            time.sleep(0.02)  # paced, so the kill lands between (or during) calls

    # Calls race the kill: some land before it, one may lose its reply, the rest wait.
    worker = threading.Thread(target=retry_the_rest)
    worker.start()
    started_calls.wait(5)
    time.sleep(0.05)
    old_primary.kill()
    worker.join(60)
    assert not worker.is_alive()
    assert errors == []
    assert max(durations) < connection.retry_budget
    assert max(durations) > 0.5  # a call really waited for the promotion
    assert len([d for d in durations if d < 0.1]) >= 1  # and some ran before the kill

    new_port = wait_for(
        lambda: group.master_port() == replica.port and replica.port, 10, "promotion"
    )
    promoted = redis.Redis(port=new_port, decode_responses=True)
    assert promoted.info("replication")["role"] == "master"
    assert sorted(promoted.lrange(f"{prefix}:q:wait", 0, -1), key=int) == ids
    for job_id in ids:
        assert_retried_once(promoted, prefix, job_id)
    assert promoted.zcard(f"{prefix}:q:failed") == 0
    assert any(e["event"] == "redis.retry" for e in log_events)

    # Later calls keep going to the promoted replica.
    fabricate_failed_job(promoted, prefix, "q", "99")
    Job.from_id(queue, "99").retry()  # type: ignore[union-attr]
    assert_retried_once(promoted, prefix, "99")
    promoted.close()
    queue.close()
    connection.close()
