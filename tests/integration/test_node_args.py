"""Node-shaped arguments: every options dict is read by one declared shape (node_args) - known
keys mapped and type-checked, unknown ones refused by name - and a refused call leaves Redis
exactly as it was."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import events
from queue_helpers import snapshot

from bullmq_sync import (
    FlowProducer,
    InvalidArgument,
    Queue,
    QueueEvents,
    QueueHasActiveJobs,
)
from bullmq_sync.node_args import SHAPES, Key, Shape, boolean, whole

# -- the rule itself ------------------------------------------------------------------------


def test_unknown_key_names_the_key_and_the_accepted_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        SHAPES["Job.remove"].parse({"removeChilden": False})
    assert "'removeChilden'" in str(caught.value)
    assert "removeChildren" in str(caught.value)


def test_refused_key_gives_its_reason() -> None:
    with pytest.raises(InvalidArgument, match="JavaScript tracer"):
        SHAPES["Queue"].parse({"telemetry": {}})


def test_none_is_not_given_and_our_spelling_is_accepted() -> None:
    shape = Shape("X.y", {"someFlag": Key("some_flag", boolean), "noop": Key(None, boolean),
                          "count": Key("count", whole(1))})
    assert shape.parse({"count": None}) == {}  # undefined in Node: the default
    assert shape.parse({"someFlag": None}) == {"some_flag": False}  # Node's null flag is falsy
    assert shape.parse({"some_flag": True}) == {"some_flag": True}
    assert shape.parse({"noop": True}) == {}
    with pytest.raises(InvalidArgument, match="given twice"):
        shape.parse({"some_flag": True, "someFlag": False})
    with pytest.raises(InvalidArgument, match="must be True or False"):
        shape.parse({"noop": "yes"})
    with pytest.raises(InvalidArgument, match="options dict"):
        shape.parse(["someFlag"])


# -- the destructive cases, fixed ------------------------------------------------------------


def test_obliterate_force_false_refuses_active_queue_and_leaves_it_paused(
    queue: Queue, raw: Any, prefix: str
) -> None:
    job = queue.add("busy")
    queue.add("idle")
    raw.lrem(f"{prefix}:q:wait", 0, job.id)
    raw.lpush(f"{prefix}:q:active", job.id)
    with pytest.raises(QueueHasActiveJobs):
        queue.obliterate({"force": False})
    assert queue.is_paused()
    assert raw.exists(job.key) and raw.llen(f"{prefix}:q:wait") == 1
    with pytest.raises(QueueHasActiveJobs):
        queue.obliterate(force=False)
    queue.obliterate({"force": True, "count": 1})
    assert list(raw.scan_iter(match=f"{prefix}:q:*")) == []


def test_remove_children_false_keeps_the_child(queue: Queue, raw: Any, prefix: str) -> None:
    parent = queue.add("parent")
    child = queue.add("child", parent=parent)
    assert parent.remove({"removeChildren": False}) is True
    assert raw.exists(child.key) and not raw.exists(parent.key)
    other_parent = queue.add("p2")
    other_child = queue.add("c2", parent=other_parent)
    assert queue.remove(other_parent.id, {"removeChildren": False}) == 1
    assert raw.exists(other_child.key)
    third = queue.add("p3")
    third_child = queue.add("c3", parent=third)
    assert third.remove(remove_children=True) is True
    assert not raw.exists(third_child.key)


def test_change_priority_promote_and_retry_take_node_dicts(
    queue: Queue, raw: Any, prefix: str
) -> None:
    job = queue.add("j")
    job.changePriority({"priority": 2})
    assert raw.zscore(f"{prefix}:q:prioritized", job.id) is not None
    job.change_priority({"priority": 0, "lifo": True})
    assert raw.lrange(f"{prefix}:q:wait", -1, -1) == [job.id]
    for i in range(3):
        queue.add(f"d{i}", delay=60_000)
    assert queue.promoteJobs({"count": 2}) == 3
    assert queue.promote_jobs({"count": 10}) == 0
    for job_id in raw.lrange(f"{prefix}:q:wait", 0, -1):
        raw.lrem(f"{prefix}:q:wait", 0, job_id)
        raw.zadd(f"{prefix}:q:failed", {job_id: int(time.time() * 1000)})
    assert queue.retryJobs({"count": 10, "state": "failed", "timestamp": 1}) == 0
    assert queue.retryJobs({"count": 10, "state": "failed"}) == 4
    assert queue.retry_jobs({"state": "completed"}) == 0


def test_get_dependencies_count_selects_like_node(queue: Queue) -> None:
    parent = queue.add("p")
    queue.add("c", parent=parent)
    assert parent.get_dependencies_count({"unprocessed": True}) == {"unprocessed": 1}
    assert parent.get_dependencies_count()["unprocessed"] == 1


def test_queue_events_max_len_written_to_meta(connection: Any, raw: Any, prefix: str) -> None:
    with Queue("q", {"streams": {"events": {"maxLen": 5}}}, prefix=prefix, connection=connection):
        assert raw.hget(f"{prefix}:q:meta", "opts.maxLenEvents") == "5"
    with Queue("q", prefix=prefix, connection=connection, events_max_len=9) as queue:
        for i in range(250):
            queue.add(f"j{i}")
    assert raw.hget(f"{prefix}:q:meta", "opts.maxLenEvents") == "9"
    assert raw.xlen(f"{prefix}:q:events") < 200


def test_telemetry_and_custom_backoff_accepted(queue: Queue, raw: Any) -> None:
    job = queue.add(
        "t",
        {},
        {"telemetry": {"metadata": "m", "omitContext": False}, "backoff": {"type": "mine"}},
    )
    assert job.opts["telemetry"] == {"metadata": "m", "omitContext": False}
    loaded = queue.get_job(job.id)
    assert loaded is not None
    assert loaded.opts["telemetry"] == {"metadata": "m", "omitContext": False}
    assert loaded.opts["backoff"] == {"type": "mine"}


def test_scheduler_template_starts_from_queue_defaults(
    connection: Any, raw: Any, prefix: str
) -> None:
    defaults = {"attempts": 5, "removeOnFail": 3}
    with Queue("q", {"defaultJobOptions": defaults}, prefix=prefix, connection=connection) as q:
        job = q.upsert_job_scheduler("s", {"every": 60_000}, {"opts": {"attempts": 2}})
        assert job is not None
        assert job.opts["attempts"] == 2 and job.opts["removeOnFail"] == 3
        info = q.get_job_scheduler("s")
        assert info is not None and info["template"]["opts"] == {"attempts": 2, "removeOnFail": 3}


# -- bad input: typed error, nothing sent -----------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda q, j: q.obliterate({"force": "false"}),
        lambda q, j: q.obliterate({"forse": True}),
        lambda q, j: q.obliterate("yes"),
        lambda q, j: q.obliterate({"count": 0}),
        lambda q, j: q.obliterate(force=1),
        lambda q, j: j.remove({"removeChildren": 0}),
        lambda q, j: j.remove({"remove_children": "false"}),
        lambda q, j: j.remove("no"),
        lambda q, j: j.remove(remove_children="no"),
        lambda q, j: q.remove(j.id, {"children": False}),
        lambda q, j: q.remove(j.id, 0),
        lambda q, j: j.changePriority({"priority": -1}),
        lambda q, j: j.changePriority({"prio": 1}),
        lambda q, j: j.changePriority(5),
        lambda q, j: j.changePriority({"priority": 1, "lifo": "yes"}),
        lambda q, j: q.retryJobs({"state": "active"}),
        lambda q, j: q.retryJobs({"count": 0}),
        lambda q, j: q.retryJobs({"cnt": 1}),
        lambda q, j: q.retryJobs({"timestamp": -5}),
        lambda q, j: q.retry_jobs({"state": "waiting"}),
        lambda q, j: q.promoteJobs({"count": "10"}),
        lambda q, j: q.promoteJobs({"limit": 10}),
        lambda q, j: q.promote_jobs({"count": 1.5}),
        lambda q, j: j.retry("failed", {"resetAttemptsMade": 1}),
        lambda q, j: j.get_dependencies_count({"pending": True}),
        lambda q, j: q.add("x", {}, {"telemetry": {"metadata": "m", "omit": True}}),
        lambda q, j: q.add("x", {}, {"repeat": {"every": 10}}),
        lambda q, j: q.add("x", {}, {"backoff": {"type": None}}),
        lambda q, j: q.upsert_job_scheduler("s", {"every": 10}, {"opts": {"deduplication": {}}}),
        lambda q, j: q.add_job_log(j.id, 5),
        lambda q, j: q.add_job_log("", "row"),
        lambda q, j: q.addJobLog(j.id, "row", -1),
        lambda q, j: q.update_job_progress(j.id, object()),
        lambda q, j: q.updateJobProgress(None, 5),
        lambda q, j: j.clear_logs(-2),
        lambda q, j: q.drain("false"),
        lambda q, j: q.retry_jobs({"state": "failed"}, 10),
        lambda q, j: j.change_priority({"priority": 3}, True),
        lambda q, j: j.moveToWaitingChildren("tok", {"kid": {"id": "1", "queue": "bull:q"}}),
        lambda q, j: j.moveToWaitingChildren("tok", {"child": "bull:q:1"}),
        lambda q, j: q.upsert_job_scheduler("s", {"every": 10, "key": "x"}),
        lambda q, j: q.upsert_job_scheduler("s", {"every": 10, "prevMillis": 5}),
        lambda q, j: q.upsert_job_scheduler("s", {"evry": 10}),
    ],
)
def test_bad_options_raise_and_leave_redis_unchanged(
    queue: Queue, raw: Any, prefix: str, call: Any
) -> None:
    job = queue.add("seed")
    raw.lrem(f"{prefix}:q:wait", 0, job.id)
    raw.zadd(f"{prefix}:q:failed", {job.id: 1})
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        call(queue, job)
    assert snapshot(raw, prefix) == before


@pytest.mark.parametrize(
    "opts",
    [
        {"nonsense": 1},
        {"telemetry": object()},
        {"settings": {"repeatStrategy": None}},
        {"streams": {"events": {"maxLen": -1}}},
        {"streams": {"events": {"maxlen": 10}}},
        {"streams": {"events": {"maxLen": 10}}, "skipMetasUpdate": True},
        {"skipVersionCheck": "yes"},
        {"defaultJobOptions": "none"},
        {"prefix": 7},
    ],
)
def test_bad_queue_options_raise_before_anything_is_written(
    connection: Any, raw: Any, prefix: str, opts: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        Queue("q", opts, prefix=prefix, connection=connection)
    assert list(raw.scan_iter(match=f"{prefix}:*")) == []


def test_accepted_noop_queue_options(connection: Any, raw: Any, prefix: str) -> None:
    opts = {"skipVersionCheck": True, "skipWaitingForReady": True, "blockingConnection": False}
    with Queue("q", opts, prefix=prefix, connection=connection) as queue:
        queue.add("a")
    with QueueEvents("q", {**opts, "lastEventId": "0"}, prefix=prefix, connection=connection) as qe:
        assert [e.name for e in qe.iter(block=False)] == ["added", "waiting"]
    with FlowProducer({"skipVersionCheck": True, "prefix": prefix}, connection=connection) as fp:
        fp.add({"name": "f", "queueName": "q"})
    assert [e["event"] for e in events(raw, prefix)] == ["added", "waiting"] * 2


@pytest.mark.parametrize(
    "make",
    [
        lambda c, p: QueueEvents("q", {"blockingTimeout": 0}, prefix=p, connection=c),
        lambda c, p: QueueEvents("q", {"autorun": "yes"}, prefix=p, connection=c),
        lambda c, p: QueueEvents("q", {"lastEvent": "0"}, prefix=p, connection=c),
        lambda c, p: FlowProducer({"telemetry": {}}, connection=c),
        lambda c, p: FlowProducer({"queuesOptions": {}}, connection=c),
        lambda c, p: FlowProducer({"prefix": p}, connection=c).add(
            {"name": "f", "queueName": "q"}, {"queuesOptions": {"q": {"streams": {}}}}
        ),
        lambda c, p: FlowProducer({"prefix": p}, connection=c).add(
            {"name": "f", "queueName": "q"}, {"queueOptions": {}}
        ),
        lambda c, p: FlowProducer({"prefix": p}, connection=c).add(
            {"name": "f", "queueName": "q"},
            {"queuesOptions": {"other": {"defaultJobOptions": {"atempts": 2}}}},
        ),
    ],
)
def test_bad_events_and_flow_options(connection: Any, raw: Any, prefix: str, make: Any) -> None:
    with pytest.raises(InvalidArgument):
        make(connection, prefix)
    assert list(raw.scan_iter(match=f"{prefix}:*")) == []


def test_thin_queue_and_job_mappings(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.add("j")
    assert queue.add_job_log(job.id, "one") == 1
    assert queue.addJobLog(job.id, "two", 1) == 1
    assert raw.lrange(f"{job.key}:logs", 0, -1) == ["two"]
    queue.update_job_progress(job.id, 42)
    assert raw.hget(job.key, "progress") == "42"
    job.clear_logs()
    assert not raw.exists(f"{job.key}:logs")
    assert queue.get_global_rate_limit() is None
    queue.set_global_rate_limit(4, 500)
    assert queue.getGlobalRateLimit() == {"max": 4, "duration": 500}
    assert queue.get_version() is None
    assert queue.get_meta()["paused"] is False
    assert queue.defaultJobOptions == {} and queue.qualifiedName == f"{prefix}:q"
    assert job.is_waiting() and not job.isActive() and not job.is_completed()
    assert queue.get_debounce_job_id("nope") is None and queue.removeDebounceKey("nope") == 0


def test_move_to_waiting_children_takes_nodes_child_option(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    from helpers import wait_for

    from bullmq_sync import Job, Worker

    seen: dict[str, Any] = {}

    def processor(job: Job, token: str) -> str:
        child = {"id": "nope", "queue": f"{prefix}:x"}
        seen["named"] = job.moveToWaitingChildren(token, {"child": child})
        seen["plain"] = job.moveToWaitingChildren(token)
        return "ok"

    queue.add("lonely")
    with Worker("q", processor, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert seen == {"named": False, "plain": False}


def test_custom_backoff_added_here_runs_in_our_worker(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    from helpers import wait_for

    from bullmq_sync import Job, Worker

    job = queue.add("work", {}, {"attempts": 2, "backoff": {"type": "linear", "delay": 7}})
    seen: list[tuple[int, str]] = []

    def strategy(made: int, kind: str, err: BaseException, j: Job) -> int:
        seen.append((made, kind))
        return 40_000

    def failing(j: Job) -> None:
        raise RuntimeError("nope")

    with Worker(
        "q", failing, connection=redis_url, prefix=prefix, drain_delay=1, backoff_strategy=strategy
    ):
        wait_for(lambda: raw.zcard(f"{prefix}:q:delayed") == 1)
    assert seen == [(1, "linear")]
    assert raw.hget(job.key, "delay") == "40000"
