"""Redis Cluster on real local servers: routing, hash-slot checks, script loading, redirects,
resharding and failover, and Node BullMQ on the same hash-tagged queue."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bullmq_sync.job import retry_script_call
import redis
from cluster_servers import LocalCluster, fabricate_failed_job, require_binaries
from redis.cluster import RedisCluster
from redis.crc import key_slot

from bullmq_sync import ConfigurationError, Connection, Job, Queue
from bullmq_sync.cluster import ClusterConnection
from bullmq_sync.scripts import LIBRARY

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three primaries, no replicas, shared by the tests that don't break the topology."""
    require_binaries()
    with LocalCluster(primaries=3) as running:
        yield running


@pytest.fixture
def raw_cluster(cluster: LocalCluster) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def conn(cluster: LocalCluster) -> Iterator[Connection]:
    connection = Connection(cluster.url)
    yield connection
    connection.close()


def tagged(prefix: str, name: str) -> str:
    return f"{prefix}:{{{name}}}"


def names_on_distinct_nodes(cluster: LocalCluster, prefix: str, count: int = 3) -> list[str]:
    """Queue names ``q0``, ``q1``... whose hash-tagged keys live on ``count`` different nodes."""
    chosen: dict[int, str] = {}
    for i in range(500):
        name = f"q{i}"
        owner = cluster.owner_of(f"{prefix}:{{{name}}}:wait").port
        chosen.setdefault(owner, name)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError("could not spread queues over the nodes")


def assert_retried_once(
    client: redis.Redis | RedisCluster, prefix: str, name: str, job_id: str
) -> None:
    base = f"{prefix}:{{{name}}}:"
    assert client.lrange(base + "wait", 0, -1).count(job_id) == 1
    assert client.zscore(base + "failed", job_id) is None
    fields = client.hgetall(base + job_id)
    assert (
        "failedReason" not in fields and "finishedOn" not in fields and "processedOn" not in fields
    )
    waiting = [
        e
        for _, e in client.xrange(base + "events")
        if e.get("event") == "waiting" and e.get("jobId") == job_id
    ]
    assert len(waiting) == 1


# -- construction -------------------------------------------------------------------------


def test_every_cluster_form_gives_a_cluster_connection(cluster: LocalCluster) -> None:
    by_url = Connection(cluster.url)
    by_flag = Connection(cluster.seed_url, cluster=True)
    borrowed_client = RedisCluster.from_url(cluster.seed_url)
    borrowed = Connection(borrowed_client)
    try:
        for connection in (by_url, by_flag, borrowed):
            assert isinstance(connection, ClusterConnection)
            assert connection.execute("SET", "{cform}:k", "v") == "OK"
            assert connection.execute("GET", "{cform}:k") == "v"
        assert by_url.owns_pool and not borrowed.owns_pool
        assert Connection.coerce(borrowed_client).client is borrowed_client
    finally:
        by_url.close()
        by_flag.close()
        borrowed.close()
    assert borrowed_client.ping() is True  # a borrowed cluster client is left open
    borrowed_client.close()


def test_cluster_url_password_is_redacted_and_bad_urls_refused(cluster: LocalCluster) -> None:
    with pytest.raises(ConfigurationError, match=r"\*\*\*"):
        Connection("redis+cluster://:hunter2@127.0.0.1:1", socket_connect_timeout=0.2)
    with pytest.raises(ConfigurationError):
        Connection("unix:///tmp/x.sock", cluster=True)


# -- hash slots ---------------------------------------------------------------------------


def test_queue_whose_keys_span_slots_is_refused_with_the_fix(
    conn: Connection, raw_cluster: RedisCluster, prefix: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Queue("emails", connection=conn, prefix=prefix)
    message = str(refused.value)
    assert "{emails}" in message and f"{{{prefix}}}" in message and "hash" in message
    with pytest.raises(ConfigurationError):
        Queue("emails", {"prefix": prefix, "connection": conn})
    # Both hash-tag placements are accepted; nothing was written by the refused ones.
    Queue("{emails}", connection=conn, prefix=prefix).close()
    Queue("emails", connection=conn, prefix=f"{{{prefix}}}").close()
    assert raw_cluster.keys(f"*{prefix}*") == []
    assert not conn.closed  # a refused queue leaves a shared connection open


def test_refused_queue_closes_the_connection_it_created(cluster: LocalCluster) -> None:
    with pytest.raises(ConfigurationError):
        Queue("plain", connection=cluster.url)


def test_single_node_connection_accepts_untagged_queue(
    connection: Connection, prefix: str, raw: redis.Redis
) -> None:
    """The name a cluster refuses (no hash tag) works on one server: keys in several slots."""
    with Queue("emails", connection=connection, prefix=prefix) as queue:
        job = queue.add("welcome", {"to": "ada"})
        assert queue.get_job_counts("waiting") == {"waiting": 1}
        fetched = queue.get_job(job.id)
        assert fetched is not None and fetched.data == {"to": "ada"}
    assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == [job.id]
    assert not connection.closed


# -- scripts ------------------------------------------------------------------------------


def test_scripts_are_preloaded_on_every_primary(cluster: LocalCluster, prefix: str) -> None:
    for node in cluster.live_nodes():
        client = cluster.client(node)
        client.script_flush()
        client.close()
    connection = Connection(cluster.url)
    try:
        connection.execute("GET", tagged(prefix, "x"))  # first use preloads
        shas = [s.sha for s in LIBRARY.all()]
        for node in cluster.live_nodes():
            client = cluster.client(node)
            assert all(client.script_exists(*shas)), f"scripts missing on {node.port}"
            client.close()
    finally:
        connection.close()


def test_noscript_after_script_flush_is_recovered_on_the_answering_node(
    cluster: LocalCluster,
    conn: Connection,
    raw_cluster: RedisCluster,
    prefix: str,
    log_events: list,
) -> None:
    queue = Queue("{q}", connection=conn, prefix=prefix)
    fabricate_failed_job(raw_cluster, prefix, "{q}", "1")
    conn.execute("GET", tagged(prefix, "q") + ":id")  # preloaded
    owner = cluster.owner_of(tagged(prefix, "q") + ":wait")
    client = cluster.client(owner)
    client.script_flush()
    Job.from_id(queue, "1").retry()  # type: ignore[union-attr]
    assert client.script_exists(LIBRARY.get("retryFinishedJob").sha) == [True]
    client.close()
    assert_retried_once(raw_cluster, prefix, "q", "1")
    assert any(e["event"] == "script.reloaded" or "reload" in e["event"] for e in log_events)


# -- the public methods -------------------------------------------------------------------


def test_execute_pipeline_and_scripts_across_queues_in_different_slots(
    cluster: LocalCluster, conn: Connection, raw_cluster: RedisCluster, prefix: str
) -> None:
    names = names_on_distinct_nodes(cluster, prefix)
    queues = [Queue(f"{{{n}}}", connection=conn, prefix=prefix) for n in names]
    for name in names:
        for job_id in ("1", "2"):
            fabricate_failed_job(raw_cluster, prefix, f"{{{name}}}", job_id)

    # pipeline: replies in request order although the commands go to three nodes
    replies = conn.pipeline([("ZCARD", f"{tagged(prefix, n)}:failed") for n in names] + [("PING",)])
    assert replies[:3] == [2, 2, 2]

    # run_script for one queue, run_script_many across the three
    Job.from_id(queues[0], "1").retry()  # type: ignore[union-attr]
    calls = []
    for queue in queues:
        keys = queue.keys
        for job_id in ("1", "2") if queue is not queues[0] else ("2",):
            calls.append(
                retry_script_call(queue, job_id)
            )
    replies = conn.run_script_many("retryFinishedJob", calls)
    assert replies == [[1, "waiting"]] * 5
    for name in names:
        for job_id in ("1", "2"):
            assert_retried_once(raw_cluster, prefix, name, job_id)
    # the keys really are on three different primaries
    assert len({cluster.owner_of(f"{tagged(prefix, n)}:wait").port for n in names}) == 3


def test_keyless_commands_and_cross_slot_errors(conn: Connection, prefix: str) -> None:
    assert conn.execute("PING") in (True, "PONG")
    from bullmq_sync import BullMQSyncError

    with pytest.raises(BullMQSyncError):
        conn.run_script("retryFinishedJob", [f"{prefix}:a", f"{prefix}:b"], ["1"])


def test_dedicated_clients_reach_the_owner_of_the_key(
    cluster: LocalCluster, conn: Connection, prefix: str
) -> None:
    routed = conn.dedicated(socket_timeout=2)  # no key: a separate cluster client
    try:
        assert isinstance(routed, RedisCluster)
        routed.zadd(tagged(prefix, "d") + ":marker", {"0": 1})
        assert routed.bzpopmin(tagged(prefix, "d") + ":marker", timeout=0.1) is not None
    finally:
        routed.close()
    key = tagged(prefix, "q") + ":marker"
    client = conn.dedicated(socket_timeout=2, key=key)
    try:
        assert client.connection_pool.connection_kwargs["port"] == cluster.owner_of(key).port
        assert client.bzpopmin(key, timeout=0.1) is None
    finally:
        client.close()


def test_closed_cluster_connection_refuses_calls(cluster: LocalCluster) -> None:
    from bullmq_sync import ClientClosed

    connection = Connection(cluster.url)
    connection.close()
    connection.close()
    with pytest.raises(ClientClosed):
        connection.execute("GET", "{x}:y")


# -- topology changes ---------------------------------------------------------------------


def test_resharding_is_followed_and_noscript_on_the_new_owner_recovered(
    cluster: LocalCluster, conn: Connection, raw_cluster: RedisCluster, prefix: str
) -> None:
    queue = Queue("{q}", connection=conn, prefix=prefix)
    for job_id in ("1", "2", "3"):
        fabricate_failed_job(raw_cluster, prefix, "{q}", job_id)
    Job.from_id(queue, "1").retry()  # type: ignore[union-attr]  # slot map and scripts warm
    job2 = Job.from_id(queue, "2")
    assert job2 is not None
    # two more connections whose slot maps will be stale after the move
    stale_pipeline, stale_batch = Connection(cluster.url), Connection(cluster.url)
    for stale in (stale_pipeline, stale_batch):
        stale.execute("GET", f"{tagged(prefix, 'q')}:id")

    slot = key_slot(f"{tagged(prefix, 'q')}:wait".encode())
    source = cluster.owner_of(f"{tagged(prefix, 'q')}:wait")
    target = next(n for n in cluster.live_nodes() if n.port != source.port)
    moved = cluster.move_slot(slot, source, target)
    assert moved >= 4  # job hashes, wait list, events, outcome key...
    client = cluster.client(target)
    client.script_flush()  # the new owner does not know our scripts

    job2.retry()  # MOVED -> new slot map -> NOSCRIPT -> load there -> done
    assert client.lrange(f"{tagged(prefix, 'q')}:wait", 0, -1) == ["2", "1"]
    assert client.script_exists(LIBRARY.get("retryFinishedJob").sha) == [True]
    client.close()
    assert_retried_once(raw_cluster, prefix, "q", "2")

    # a pipeline answered with MOVED is asked again on the new owner, in order
    base = f"{tagged(prefix, 'q')}:"
    assert stale_pipeline.pipeline([("LLEN", base + "wait"), ("HGET", base + "3", "name")]) == [
        2,
        "fabricated",
    ]
    # a batch of script calls answered with MOVED runs once on the new owner
    keys = queue.keys
    call = (
        [keys.job("3"), keys.events, keys.failed, keys.wait, keys.meta, keys.active,
         keys.marker, keys.prioritized, keys.pc, keys.op(queue.next_token())],
        ["3", "0", "failed", "0", "0", 60000],
    )  # fmt: skip
    assert stale_batch.run_script_many("retryFinishedJob", [call]) == [[1, "waiting"]]
    assert_retried_once(raw_cluster, prefix, "q", "3")
    stale_pipeline.close()
    stale_batch.close()
    cluster.move_slot(slot, target, source)  # put it back for the other tests


def test_primary_failover_resumes_within_budget_and_applies_each_retry_once(prefix: str) -> None:
    require_binaries()
    with LocalCluster(primaries=3, replicas=1, node_timeout_ms=1000) as failing:
        connection = Connection(failing.url, retry_budget=30)
        queue = Queue("{q}", connection=connection, prefix=prefix)
        seed = RedisCluster.from_url(failing.seed_url, decode_responses=True)
        ids = [str(i) for i in range(1, 21)]
        for job_id in ids:
            fabricate_failed_job(seed, prefix, "{q}", job_id)
        owner = failing.owner_of(f"{tagged(prefix, 'q')}:wait")
        owner_client = failing.client(owner)
        for job_id in ids[:10]:
            Job.from_id(queue, job_id).retry()  # type: ignore[union-attr]
        assert owner_client.execute_command("WAIT", 1, 5000) == 1
        owner_client.close()

        jobs = [Job.from_id(queue, job_id) for job_id in ids[10:]]
        durations: list[float] = []
        errors: list[BaseException] = []

        def retry_rest() -> None:
            for job in jobs:
                started = time.monotonic()
                try:
                    job.retry()  # type: ignore[union-attr]
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                durations.append(time.monotonic() - started)

        owner.kill()
        worker = threading.Thread(target=retry_rest)
        worker.start()
        worker.join(60)
        assert not worker.is_alive()
        assert errors == []
        assert max(durations) < connection.retry_budget
        assert max(durations) > 0.5  # the first call really waited for the promotion

        seed.close()
        check = RedisCluster.from_url(failing.seed_url, decode_responses=True)
        new_owner = failing.owner_of(f"{tagged(prefix, 'q')}:wait")
        assert new_owner.port != owner.port
        assert sorted(check.lrange(f"{tagged(prefix, 'q')}:wait", 0, -1), key=int) == ids
        for job_id in ids:
            assert_retried_once(check, prefix, "q", job_id)
        check.close()
        queue.close()
        connection.close()


# -- Node BullMQ on the same cluster ------------------------------------------------------


@pytest.mark.interop
def test_node_bullmq_and_python_share_a_hash_tagged_queue(
    cluster: LocalCluster, conn: Connection, prefix: str
) -> None:
    """Node adds and fails a job, Python retries it, Node's worker then completes it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
    from nodebullmq import NodeBullMQ, require_node

    require_node(6)
    tag = f"{{{prefix}}}"  # the hash-tagged prefix both sides use
    with NodeBullMQ(cluster.url, major=6) as node:
        added = node.call(
            "add",
            queue="shared",
            prefix=tag,
            name="mail",
            data={"__failTimes": 1},
            opts={"attempts": 1},
        )
        job_id = str(added["id"])
        [failed] = node.call("process", queue="shared", prefix=tag, count=1, timeoutMs=15000)
        assert failed["event"] == "failed"

        queue = Queue("shared", connection=conn, prefix=tag)
        job = Job.from_id(queue, job_id)
        assert job is not None and job.failed_reason and job.attempts_made == 1
        job.retry()
        assert node.call("getJob", queue="shared", prefix=tag, jobId=job_id)["state"] == "waiting"

        [completed] = node.call("process", queue="shared", prefix=tag, count=1, timeoutMs=15000)
        assert completed["event"] == "completed" and completed["jobId"] == job_id
        raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
        assert raw.zrange(f"{tag}:shared:completed", 0, -1) == [job_id]
        assert raw.zrange(f"{tag}:shared:failed", 0, -1) == []
        raw.close()
        queue.close()


def test_ask_redirect_mid_migration_and_split_keys_wait_for_the_end(
    cluster: LocalCluster,
    conn: Connection,
    raw_cluster: RedisCluster,
    prefix: str,
    log_events: list,
) -> None:
    """A key already moved answers ASK (followed); a script whose keys are split between the two
    nodes gets TRYAGAIN, which is retried until the migration completes."""
    queue = Queue("{mig}", connection=conn, prefix=prefix)
    for job_id in ("1", "2"):
        fabricate_failed_job(raw_cluster, prefix, "{mig}", job_id)
    base = f"{tagged(prefix, 'mig')}:"
    slot = key_slot((base + "wait").encode())
    source = cluster.owner_of(base + "wait")
    target = next(n for n in cluster.live_nodes() if n.port != source.port)
    src, dst = cluster.client(source), cluster.client(target)
    src_id, dst_id = cluster.node_id(source), cluster.node_id(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", base + "1")

    # the moved job hash: the source answers ASK, the call is repeated on the target
    assert conn.execute("HGET", base + "1", "name") == "fabricated"
    assert conn.pipeline([("HGET", base + "1", "name"), ("HGET", base + "2", "name")]) == [
        "fabricated",
        "fabricated",
    ]

    def finish_migration() -> None:
        time.sleep(0.5)
        cluster.move_slot(slot, source, target)  # moves the rest, assigns the slot

    finisher = threading.Thread(target=finish_migration)
    finisher.start()
    job = Job.from_id(queue, "1")
    assert job is not None
    job.retry()  # keys split over two nodes: TRYAGAIN until the slot has moved
    finisher.join()
    retries = [e for e in log_events if e["event"] == "redis.retry"]
    assert retries and "TryAgainError" in retries[0]["detail"]
    src.close()
    dst.close()
    assert_retried_once(raw_cluster, prefix, "mig", "1")
    cluster.move_slot(slot, target, source)


def test_batch_with_noscript_on_one_node_reloads_only_there(
    cluster: LocalCluster, conn: Connection, raw_cluster: RedisCluster, prefix: str
) -> None:
    names = names_on_distinct_nodes(cluster, prefix)
    queues = [Queue(f"{{{n}}}", connection=conn, prefix=prefix) for n in names]
    calls = []
    for queue in queues:
        fabricate_failed_job(raw_cluster, prefix, queue.name, "7")
        keys = queue.keys
        calls.append((
            [keys.job("7"), keys.events, keys.failed, keys.wait, keys.meta, keys.active,
             keys.marker, keys.prioritized, keys.pc, keys.op(queue.next_token())],
            ["7", "0", "failed", "0", "0", 60000],
        ))  # fmt: skip
    conn.execute("GET", f"{tagged(prefix, names[0])}:id")  # preloaded everywhere
    flushed = cluster.owner_of(f"{tagged(prefix, names[1])}:wait")
    client = cluster.client(flushed)
    client.script_flush()
    assert conn.run_script_many("retryFinishedJob", calls) == [[1, "waiting"]] * 3
    assert client.script_exists(LIBRARY.get("retryFinishedJob").sha) == [True]
    client.close()
    for name in names:
        assert_retried_once(raw_cluster, prefix, name, "7")


def test_worker_and_queue_events_on_the_cluster(conn: Connection, prefix: str) -> None:
    """Blocking reads (the worker's BZPOPMIN, QueueEvents' XREAD) go to the key's primary."""
    import time

    from bullmq_sync import Queue, QueueEvents, Worker

    queue = Queue("{work}", connection=conn, prefix=prefix)
    events = QueueEvents("{work}", connection=conn, prefix=prefix)
    seen: list[str] = []
    events.on("completed", lambda e: seen.append(str(e.job_id)))
    events.start()
    worker = Worker("{work}", lambda job: job.data["n"] * 2, connection=conn, prefix=prefix,
                    drain_delay=1)
    jobs = [queue.add("double", {"n": i}) for i in range(5)]
    deadline = time.monotonic() + 15
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert worker.close(timeout=10)
    assert time.monotonic() - started < 5  # the blocked BZPOPMIN was interrupted
    events.close()
    assert sorted(seen) == sorted(j.id for j in jobs)
    assert [queue.get_job(j.id).return_value for j in jobs] == [0, 2, 4, 6, 8]


# -- workers, waiting and counts on a cluster (get_workers, wait_until_finished) ---------


def test_get_workers_and_wait_until_finished_on_the_cluster(
    conn: Connection, prefix: str, cluster: LocalCluster
) -> None:
    """CLIENT LIST is read on every primary; the one with the queue's workers answers."""
    from helpers import wait_for

    from bullmq_sync import QueueEvents, Worker

    queue = Queue("{team}", connection=conn, prefix=prefix)
    assert len(conn.client_lists()) == 3
    with QueueEvents("{team}", connection=conn, prefix=prefix) as events, Worker(
        "{team}", lambda job: job.data["n"] + 1, connection=conn, prefix=prefix, name="c1"
    ), Worker("{team}", lambda job: 0, connection=conn, prefix=prefix, drain_delay=1):
        wait_for(lambda: queue.get_workers_count() == 2)
        raw_names = sorted(w["rawname"] for w in queue.get_workers())
        assert raw_names == [f"{prefix}:e3RlYW19", f"{prefix}:e3RlYW19:w:c1"]  # base64("{team}")
        job = queue.add("inc", {"n": 41})
        assert job.wait_until_finished(events, timeout=10) in (42, 0)
    queue.close()
