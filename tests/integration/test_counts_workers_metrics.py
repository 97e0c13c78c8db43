"""Per-state counts, counts per priority, trim_events, get_workers, client names, Prometheus."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Connection, InvalidArgument, Queue, QueueEvents, Worker
from bullmq_sync.prometheus import escape_label_value, js_string
from bullmq_sync.workers_list import client_name, parse_client_list, worker_client_name


def snapshot(raw: Any, prefix: str) -> dict[str, Any]:
    return {key: raw.dump(key) for key in sorted(raw.keys(f"{prefix}:*"))}


def test_per_state_counts(queue: Any) -> None:
    now = int(time.time() * 1000)
    queue.add("w", {})
    queue.add("p", {}, {"priority": 4})
    queue.add("d", {}, {"delay": 50_000, "timestamp": now})
    queue.add("d", {}, {"delay": 90_000, "timestamp": now})
    assert queue.get_waiting_count() == queue.getWaitingCount() == 1
    assert queue.get_prioritized_count() == 1
    assert queue.get_delayed_count() == 2
    assert queue.get_delayed_count(now + 50_000) == 0  # strictly before
    assert queue.get_delayed_count(now + 50_001) == 1
    assert queue.getDelayedCount(float(now + 90_001)) == 2  # a whole float, as Node allows
    assert queue.get_active_count() == queue.get_completed_count() == queue.get_failed_count() == 0
    assert queue.get_waiting_children_count() == 0


def test_counts_per_priority(queue: Any) -> None:
    for priority in (1, 1, 2, 2**21 - 1):
        queue.add("p", {}, {"priority": priority})
    queue.add("w", {})
    top = 2**21 - 1
    assert queue.get_counts_per_priority([top, 1, 0, 1, 9]) == {top: 1, 1: 2, 0: 1, 9: 0}
    assert queue.getCountsPerPriority([2]) == {"2": 1}
    assert queue.get_counts_per_priority([]) == {}


def test_bad_counts_input_is_refused_and_redis_unchanged(queue: Any, raw: Any, prefix: str) -> None:
    queue.add("p", {}, {"priority": 2})
    before = snapshot(raw, prefix)
    for bad in ("12", 3, [1, -1], [1.5], [True], [2**21], None):
        with pytest.raises(InvalidArgument):
            queue.get_counts_per_priority(bad)
    for bad in (1.5, "1", True, 2**60):
        with pytest.raises(InvalidArgument, match="safe integer"):
            queue.get_delayed_count(bad)
    for bad in (-1, 1.5, "10", None, False):
        with pytest.raises(InvalidArgument):
            queue.trim_events(bad)
    for bad in (["a"], {"": 1}, {1: "x"}):
        with pytest.raises(InvalidArgument):
            queue.export_prometheus_metrics(bad)
    assert snapshot(raw, prefix) == before


def test_trim_events(queue: Any, raw: Any, prefix: str) -> None:
    for n in range(400):
        queue.add("x", {"n": n})
    key = f"{prefix}:q:events"
    assert raw.xlen(key) == 800
    removed = queue.trimEvents(100)
    assert removed == 800 - raw.xlen(key) and removed >= 600
    assert queue.trim_events(0) >= 0 and raw.xlen(key) < 200


def test_worker_blocking_socket_is_named_as_bullmq_names_it(
    redis_url: str, prefix: str, raw: Any
) -> None:
    with Queue("emails", connection=redis_url, prefix=prefix) as queue:
        assert client_name(queue.keys) == f"{prefix}:ZW1haWxz"
        assert worker_client_name(queue.keys, "a") == f"{prefix}:ZW1haWxz:w:a"
        assert queue.get_workers() == []
        with Worker("emails", lambda job: None, connection=redis_url, prefix=prefix, name="a"):
            wait_for(lambda: queue.get_workers_count() == 1)
            (worker,) = queue.get_workers()
            assert worker["name"] == "emails" and worker["rawname"] == f"{prefix}:ZW1haWxz:w:a"
            # the name survives a reconnect of the blocking socket
            raw.client_kill_filter(_id=worker["id"])
            wait_for(
                lambda: [w["id"] for w in queue.get_workers()] not in ([], [worker["id"]]),
                timeout=30,
            )
            assert queue.get_workers()[0]["rawname"] == f"{prefix}:ZW1haWxz:w:a"
        wait_for(lambda: queue.get_workers_count() == 0)


def test_count_workers_counts_many_queues_from_one_listing(redis_url: str, prefix: str) -> None:
    """The dashboard's overview: workers per queue as get_workers counts them, one CLIENT LIST."""
    from bullmq_sync.workers_list import count_workers

    with (
        Queue("a", connection=redis_url, prefix=prefix) as a,
        Queue("b", connection=redis_url, prefix=prefix) as b,
        Queue("c", connection=redis_url, prefix=prefix) as c,
    ):
        workers = [
            Worker("a", lambda job: None, connection=redis_url, prefix=prefix, autorun=True),
            Worker(
                "a", lambda job: None, connection=redis_url, prefix=prefix, name="x", autorun=True
            ),
            Worker(
                "b", lambda job: None, connection=redis_url, prefix=prefix, name="y", autorun=True
            ),
        ]
        try:
            wait_for(lambda: a.get_workers_count() == 2 and b.get_workers_count() == 1)
            counts = count_workers(a.connection, [a.keys, b.keys, c.keys])
            assert counts == {"a": 2, "b": 1, "c": 0}
        finally:
            for worker in workers:
                worker.close()


def test_a_queue_and_a_shared_connection_stay_unnamed(
    redis_url: str, prefix: str, raw: Any
) -> None:
    """BullMQ names only worker and QueueEvents connections: a producer is not a worker."""
    with Connection(redis_url) as shared:
        a = Queue("a", connection=shared, prefix=prefix)
        b = Queue("b", connection=shared, prefix=prefix)
        a.add("x", {})
        b.add("x", {})
        with (
            Worker("a", lambda job: None, connection=shared, prefix=prefix),
            QueueEvents("a", connection=shared, prefix=prefix) as events,
        ):
            events.start()
            wait_for(lambda: a.get_workers_count() == 1)
            assert b.get_workers() == []

            def names() -> list[str]:
                return sorted(c["name"] for c in raw.client_list() if c["name"].startswith(prefix))

            # QueueEvents connects from its own thread: its socket may be named a moment later.
            wait_for(lambda: len(names()) >= 2)
            assert names() == sorted([f"{prefix}:YQ==", f"{prefix}:YQ==:qe"])
            assert [c["rawname"] for c in a.get_queue_events()] == [f"{prefix}:YQ==:qe"]
            assert b.getQueueEvents() == []


def test_parse_client_list_matches_only_this_queue() -> None:
    text = "\n".join(
        [
            "id=1 addr=1.2.3.4:5 name=bull:cQ== db=0",
            "id=2 addr=1.2.3.4:6 name=bull:cQ==:w:x db=0",
            "id=3 addr=1.2.3.4:7 name=bull:cQ==:qe db=0",
            "id=4 addr=1.2.3.4:8 name=bull:cQ==x db=0",
            "id=5 addr=1.2.3.4:9 name= db=0",
        ]
    )
    found = parse_client_list(
        text, "q", lambda name: name == "bull:cQ==" or name.startswith("bull:cQ==:w:")
    )
    assert [(w["id"], w["name"], w["rawname"]) for w in found] == [
        ("1", "q", "bull:cQ=="),
        ("2", "q", "bull:cQ==:w:x"),
    ]


def test_javascript_spelling_of_label_values() -> None:
    assert [js_string(v) for v in (True, None, 2.0, 1.5, 7, "x", [1, None])] == [
        "true",
        "null",
        "2",
        "1.5",
        "7",
        "x",
        "1,",
    ]
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_a_server_refusing_client_commands_answers_as_bullmq_does(local_redis: Any) -> None:
    """Managed services that disable CLIENT (BullMQ names GCP): one placeholder entry."""
    local_redis.kill()
    local_redis.extra = ["--rename-command", "CLIENT", '""']
    local_redis.start()
    with Queue("q", connection=local_redis.url) as queue:
        assert queue.get_workers() == [{"name": "GCP does not support client list"}]


def test_a_name_redis_would_refuse_leaves_the_connection_unnamed(
    redis_url: str, prefix: str
) -> None:
    """Redis refuses client names with spaces; the worker must still work (unnamed)."""
    with (
        Queue("q", connection=redis_url, prefix=prefix) as queue,
        QueueEvents("q", connection=redis_url, prefix=prefix) as events,
    ):
        worker = Worker(
            "q", lambda job: "ok", connection=redis_url, prefix=prefix, name="has space"
        )
        errors: list[BaseException] = []
        worker.on("error", errors.append)
        with worker:
            time.sleep(0.3)  # idle: the worker now waits on its blocking connection
            job = queue.add("x", {"n": 1})
            assert job.wait_until_finished(events, timeout=10) == "ok"
            assert queue.get_workers() == []
        assert errors == []
