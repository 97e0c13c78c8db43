"""Node-shaped arguments against real Node BullMQ 6.7.0: the same call with the same options
dict leaves the same Redis state (and event stream) on both sides, and each side continues
what the other did."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis
from nodebullmq import NodeBullMQ, NodeBullMQError

from bullmq_sync.keys import OP_SEGMENT
from bullmq_sync import FlowProducer, Queue, QueueHasActiveJobs

pytestmark = pytest.mark.interop


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def _events(raw: redis.Redis, prefix: str, queue: str = "q") -> list[dict[str, str]]:
    return [fields for _, fields in raw.xrange(f"{prefix}:{queue}:events")]


def _keys(raw: redis.Redis, prefix: str) -> set[str]:
    return {
        key.removeprefix(prefix + ":")
        for key in raw.scan_iter(match=f"{prefix}:*", count=1000)
        if ":" + OP_SEGMENT not in key
    }


def _opts(raw: redis.Redis, key: str) -> dict[str, Any]:
    return json.loads(raw.hget(key, "opts") or "{}")


def _make_active(raw: redis.Redis, prefix: str, job_id: str) -> None:
    raw.lrem(f"{prefix}:q:wait", 0, job_id)
    raw.lpush(f"{prefix}:q:active", job_id)


# -- obliterate({"force": False}) ----------------------------------------------------------


def test_obliterate_force_false_refuses_and_pauses_like_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    results = {}
    for side in ("node", "ours"):
        prefix = _prefix()
        with Queue("q", prefix=prefix, connection=connection) as queue:
            active = queue.add("busy")
            queue.add("idle")
            _make_active(raw, prefix, active.id)
            if side == "node":
                with pytest.raises(NodeBullMQError, match="active jobs"):
                    node6.call("obliterate", queue="q", prefix=prefix, opts={"force": False})
            else:
                with pytest.raises(QueueHasActiveJobs):
                    queue.obliterate({"force": False})
            results[side] = (
                _keys(raw, prefix),
                raw.hexists(f"{prefix}:q:meta", "paused"),
                [e["event"] for e in _events(raw, prefix)],
            )
            assert node6.call("isPaused", queue="q", prefix=prefix) is True
            if side == "ours":  # Node finishes what we refused, with force
                node6.call("obliterate", queue="q", prefix=prefix, opts={"force": True})
            else:  # and we finish what Node refused
                queue.obliterate({"force": True})
            assert _keys(raw, prefix) == set()
    assert results["node"] == results["ours"]
    assert results["ours"][1] is True  # refused, but paused (as Node leaves it)


def test_node_obliterate_count_and_ours_with_node_dict(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, prefix: str
) -> None:
    node6.call("addBulk", queue="q", prefix=prefix, jobs=[{"name": f"j{i}"} for i in range(25)])
    with Queue("q", prefix=prefix, connection=connection) as queue:
        queue.obliterate({"force": True, "count": 7})
    assert _keys(raw, prefix) == set()


# -- remove({"removeChildren": ...}) --------------------------------------------------------


def _flow(fp_prefix: str) -> dict[str, Any]:
    return {
        "name": "parent",
        "queueName": "q",
        "opts": {"jobId": "p1"},
        "children": [
            {"name": "c1", "queueName": "q", "opts": {"jobId": "c1"}},
            {"name": "c2", "queueName": "kids", "opts": {"jobId": "c2"}},
        ],
    }


@pytest.mark.parametrize("remove_children", [False, True])
def test_remove_children_option_matches_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, remove_children: bool
) -> None:
    states = {}
    streams = {}
    for side in ("node", "ours"):
        prefix = _prefix()
        node6.call("addFlow", prefix=prefix, flow=_flow(prefix))
        raw.xtrim(f"{prefix}:q:events", 0)
        raw.xtrim(f"{prefix}:kids:events", 0)
        opts = {"removeChildren": remove_children}
        if side == "node":
            node6.call(
                "jobCall", queue="q", prefix=prefix, jobId="p1", method="remove", args=[opts]
            )
        else:
            with Queue("q", prefix=prefix, connection=connection) as queue:
                job = queue.get_job("p1")
                assert job is not None
                assert job.remove(opts) is True
        states[side] = _keys(raw, prefix)
        streams[side] = (_events(raw, prefix), _events(raw, prefix, "kids"))
    assert states["node"] == states["ours"]
    # which child goes first follows SMEMBERS order (hash order of the prefixed keys), so
    # across two prefixes only the multiset of events compares; the exact order is in the
    # one-child test below
    for node_stream, our_stream in zip(streams["node"], streams["ours"], strict=True):
        assert sorted(map(str, node_stream)) == sorted(map(str, our_stream))
    kept = {"q:c1", "kids:c2"} <= states["ours"]
    assert kept is (not remove_children)


def test_removing_parent_with_pending_children_emits_nodes_event_stream(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    streams = {}
    for side in ("node", "ours"):
        prefix = _prefix()
        flow = {
            "name": "parent",
            "queueName": "q",
            "opts": {"jobId": "p1"},
            "children": [{"name": "c1", "queueName": "q", "opts": {"jobId": "c1"}}],
        }
        if side == "node":
            node6.call("addFlow", prefix=prefix, flow=flow)
        else:
            with FlowProducer(prefix=prefix, connection=connection) as producer:
                producer.add(flow)
        raw.xtrim(f"{prefix}:q:events", 0)
        if side == "node":
            node6.call("jobCall", queue="q", prefix=prefix, jobId="p1", method="remove", args=[])
        else:
            with Queue("q", prefix=prefix, connection=connection) as queue:
                assert queue.remove("p1") == 1
        streams[side] = _events(raw, prefix)
        assert _keys(raw, prefix) - {"q:id"} <= {"q:meta", "q:events", "q:marker"}
    assert (
        streams["ours"]
        == streams["node"]
        == [
            {"event": "waiting", "jobId": "p1", "prev": "waiting-children"},
            {"event": "removed", "jobId": "c1", "prev": "wait"},
            {"event": "removed", "jobId": "p1", "prev": "wait"},
        ]
    )


# -- changePriority / retryJobs / promoteJobs with Node's dicts -----------------------------


def test_change_priority_dict_matches_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    found = {}
    for side in ("node", "ours"):
        prefix = _prefix()
        with Queue("q", prefix=prefix, connection=connection) as queue:
            job = queue.add("j", {}, {"jobId": "j1"})
            queue.add("k", {}, {"jobId": "k1", "priority": 3})
            if side == "node":
                node6.call(
                    "jobCall",
                    queue="q",
                    prefix=prefix,
                    jobId="j1",
                    method="changePriority",
                    args=[{"priority": 2}],
                )
            else:
                job.changePriority({"priority": 2})
            found[side] = (
                raw.zrange(f"{prefix}:q:prioritized", 0, -1, withscores=True),
                raw.lrange(f"{prefix}:q:wait", 0, -1),
                raw.hget(f"{prefix}:q:j1", "priority"),
                _opts(raw, f"{prefix}:q:j1").get("priority"),
            )
        # Node's worker takes the re-prioritised job first
        out = node6.call("process", queue="q", prefix=prefix, count=2, concurrency=1)
        assert [o["jobId"] for o in out if o["event"] == "completed"][:2] == ["j1", "k1"]
    assert found["node"] == found["ours"]


def test_retry_and_promote_jobs_with_node_dicts(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, prefix: str
) -> None:
    with Queue("q", prefix=prefix, connection=connection) as queue:
        for i in range(3):
            queue.add(f"f{i}", {"__fail": "boom"})
        out = node6.call("process", queue="q", prefix=prefix, count=3)
        assert sum(o["event"] == "failed" for o in out) == 3
        assert queue.retryJobs({"count": 2, "state": "failed"}) == 3
        assert queue.get_job_counts("failed", "waiting") == {"failed": 0, "waiting": 3}
        for i in range(4):
            queue.add(f"d{i}", {}, {"delay": 60_000})
        assert queue.promoteJobs({"count": 3}) == 4
        counts = node6.call("getJobCounts", queue="q", prefix=prefix, types=["delayed", "wait"])
        assert counts == {"delayed": 0, "wait": 7}


# -- Queue options ---------------------------------------------------------------------------


def test_streams_events_max_len_stored_and_honoured_like_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    node_prefix, our_prefix = _prefix(), _prefix()
    node6.call(
        "queueCall", queue="q", prefix=node_prefix, queueOpts={"streams": {"events": {"maxLen": 7}}}
    )
    opts = {"streams": {"events": {"maxLen": 7}}, "skipVersionCheck": True}
    with Queue("q", opts, prefix=our_prefix, connection=connection) as queue:
        ours = raw.hget(f"{our_prefix}:q:meta", "opts.maxLenEvents")
        assert ours == raw.hget(f"{node_prefix}:q:meta", "opts.maxLenEvents") == "7"
        for i in range(300):
            queue.add(f"j{i}")
        # XADD MAXLEN ~ 7 trims whole stream nodes (100 entries each by default)
        assert raw.xlen(f"{our_prefix}:q:events") < 200
        # Node's producer on our queue reads the same cap
        node6.call("addBulk", queue="q", prefix=our_prefix, jobs=[{"name": "n"}] * 300)
        assert raw.xlen(f"{our_prefix}:q:events") < 200


def test_telemetry_job_option_stored_as_node_stores_it(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, prefix: str
) -> None:
    telemetry = {"metadata": '{"traceparent":"00-abc-def-01"}', "omitContext": True}
    node_id = node6.call("add", queue="q", prefix=prefix, name="n", opts={"telemetry": telemetry})[
        "id"
    ]
    with Queue("q", prefix=prefix, connection=connection) as queue:
        ours = queue.add("o", {}, {"telemetry": telemetry})
        node_stored = _opts(raw, f"{prefix}:q:{node_id}")
        our_stored = _opts(raw, ours.key)
        assert node_stored["tm"] == our_stored["tm"] == telemetry["metadata"]
        assert node_stored["omc"] is our_stored["omc"] is True
        assert "telemetry" not in our_stored
        # each side reads the other's as {"telemetry": {...}}
        loaded = queue.get_job(node_id)
        assert loaded is not None and loaded.opts["telemetry"] == telemetry
    node_view = node6.call("getJob", queue="q", prefix=prefix, jobId=ours.id)
    assert node_view["json"]["opts"]["telemetry"] == telemetry


def test_custom_backoff_type_stored_like_node_and_run_by_node_worker(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, prefix: str
) -> None:
    backoff = {"type": "custom", "delay": 5}
    node_id = node6.call(
        "add", queue="q", prefix=prefix, name="n", opts={"backoff": backoff, "attempts": 2}
    )["id"]
    with Queue("q", prefix=prefix, connection=connection) as queue:
        ours = queue.add("o", {}, {"backoff": backoff, "attempts": 2})
    assert _opts(raw, ours.key)["backoff"] == _opts(raw, f"{prefix}:q:{node_id}")["backoff"]


def test_scheduler_template_applies_queue_default_job_options_like_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    defaults = {"attempts": 3, "removeOnComplete": 5, "backoff": {"type": "fixed", "delay": 10}}
    template = {"name": "tick", "data": {"x": 1}, "opts": {"attempts": 4}}
    node_prefix, our_prefix = _prefix(), _prefix()
    node_job = node6.call(
        "queueCall",
        queue="q",
        prefix=node_prefix,
        queueOpts={"defaultJobOptions": defaults},
        method="upsertJobScheduler",
        args=["s1", {"every": 60_000}, template],
    )
    with Queue("q", {"defaultJobOptions": defaults}, prefix=our_prefix, connection=connection) as q:
        our_job = q.upsert_job_scheduler("s1", {"every": 60_000}, template)
    assert our_job is not None
    node_template = json.loads(raw.hget(f"{node_prefix}:q:repeat:s1", "opts"))
    our_template = json.loads(raw.hget(f"{our_prefix}:q:repeat:s1", "opts"))
    assert our_template == node_template
    assert our_template["attempts"] == 4 and our_template["removeOnComplete"] == 5
    node_iteration = _opts(raw, f"{node_prefix}:q:{node_job['id']}")
    our_iteration = _opts(raw, our_job.key)
    for key in ("attempts", "removeOnComplete", "backoff"):
        assert our_iteration[key] == node_iteration[key]


# -- thin Queue/Job mappings: same state and the same answers as Node ------------------------


def test_queue_meta_getters_match_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any, prefix: str
) -> None:
    with Queue("q", prefix=prefix, connection=connection) as queue:
        queue.set_global_rate_limit(10, 1000)
        queue.set_global_concurrency(3)
        queue.pause()
        ours = (queue.get_meta(), queue.get_global_rate_limit(), queue.get_version())
        theirs = [
            node6.call("queueCall", queue="q", prefix=prefix, method=method, queueOpts=opts)
            for method, opts in (
                ("getMeta", {"skipMetasUpdate": True}),
                ("getGlobalRateLimit", {"skipMetasUpdate": True}),
                ("getVersion", {"skipMetasUpdate": True}),
            )
        ]
        assert list(ours) == theirs
        # a Node Queue writes its version; we read it
        node6.call("queueCall", queue="q", prefix=prefix)
        assert (queue.getVersion() or "").startswith("bullmq:6.")
        assert queue.getMeta() == node6.call(
            "queueCall", queue="q", prefix=prefix, method="getMeta"
        )
        raw.set(f"{prefix}:q:limiter", 5, px=60_000)
        assert queue.removeRateLimitKey() == 1
        assert not raw.exists(f"{prefix}:q:limiter")


def test_job_log_and_progress_by_id_match_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    found = {}
    for side in ("node", "ours"):
        prefix = _prefix()
        with Queue("q", prefix=prefix, connection=connection) as queue:
            job = queue.add("j")
            raw.xtrim(f"{prefix}:q:events", 0)
            if side == "node":
                for row in ("a", "b", "c"):
                    node6.call(
                        "queueCall",
                        queue="q",
                        prefix=prefix,
                        method="addJobLog",
                        args=[job.id, row, 2],
                        queueOpts={"skipMetasUpdate": True},
                    )
                node6.call(
                    "queueCall",
                    queue="q",
                    prefix=prefix,
                    method="updateJobProgress",
                    args=[job.id, {"pct": 50}],
                    queueOpts={"skipMetasUpdate": True},
                )
                node6.call(
                    "jobCall", queue="q", prefix=prefix, jobId=job.id, method="clearLogs", args=[1]
                )
            else:
                for row in ("a", "b", "c"):
                    queue.addJobLog(job.id, row, 2)
                queue.updateJobProgress(job.id, {"pct": 50})
                job.clearLogs(1)
            found[side] = (
                raw.lrange(f"{job.key}:logs", 0, -1),
                raw.hget(job.key, "progress"),
                [e["event"] for e in _events(raw, prefix)],
            )
            state = node6.call("getJob", queue="q", prefix=prefix, jobId=job.id)["state"]
            assert job.isWaiting() is (state == "waiting") is True
            assert job.toJSON()["id"] == job.id and job.prefix == prefix
    assert found["node"] == found["ours"] == (["c"], '{"pct":50}', ["progress"])


def test_queue_events_with_node_options_reads_nodes_events(
    node6: NodeBullMQ, connection: Any, prefix: str
) -> None:
    from bullmq_sync import QueueEvents

    node_id = node6.call("add", queue="q", prefix=prefix, name="n")["id"]
    opts = {"lastEventId": "0", "blockingTimeout": 200, "skipVersionCheck": True}
    with QueueEvents("q", opts, prefix=prefix, connection=connection) as reader:
        seen = [(e.name, e.job_id) for e in reader.iter(block=False)]
        assert reader.block_ms == 200
    assert seen == [("added", node_id), ("waiting", node_id)]


def test_flow_queues_options_and_dependency_counts_match_node(
    node6: NodeBullMQ, raw: redis.Redis, connection: Any
) -> None:
    defaults = {"queuesOptions": {"kids": {"defaultJobOptions": {"attempts": 4, "lifo": True}}}}
    flow = {
        "name": "parent",
        "queueName": "q",
        "opts": {"jobId": "p1"},
        "children": [{"name": "c", "queueName": "kids", "opts": {"jobId": "c1"}}],
    }
    node_prefix, our_prefix = _prefix(), _prefix()
    node6.call("addFlowWithOpts", prefix=node_prefix, flow=flow, opts=defaults)
    with FlowProducer({"prefix": our_prefix}, connection=connection) as producer:
        producer.add(flow, defaults)
    ours = _opts(raw, f"{our_prefix}:kids:c1")
    theirs_opts = _opts(raw, f"{node_prefix}:kids:c1")
    assert ours.pop("parent")["queue"] == f"{our_prefix}:q"
    assert theirs_opts.pop("parent")["queue"] == f"{node_prefix}:q"
    assert ours == theirs_opts
    assert ours["attempts"] == 4 and ours["lifo"] is True
    with Queue("q", prefix=our_prefix, connection=connection) as queue:
        parent = queue.get_job("p1")
        assert parent is not None
        mine = parent.getDependenciesCount({"unprocessed": True, "processed": True})
    theirs = node6.call(
        "jobCall",
        queue="q",
        prefix=our_prefix,
        jobId="p1",
        method="getDependenciesCount",
        args=[{"unprocessed": True, "processed": True}],
    )
    assert mine == theirs == {"processed": 0, "unprocessed": 1}
    # Node runs our child (with the defaults we applied), then the parent
    out = node6.call("process", queue="kids", prefix=our_prefix, count=1)
    assert [o["jobId"] for o in out if o["event"] == "completed"] == ["c1"]
