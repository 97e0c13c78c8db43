"""Flow introspection and retry_tree against real Node BullMQ 6.7.0: the same reads give the
same answers, removeUnprocessedChildren leaves the same Redis state as Node's, and Node
workers finish a flow we retried."""

from __future__ import annotations

from typing import Any

import pytest
from nodebullmq import NodeBullMQ
from test_flow_interop import normalized

from bullmq_sync import FlowProducer, Job, JobNode, Queue, Worker

pytestmark = pytest.mark.interop


def node_flow(kids: str = "kids") -> dict[str, Any]:
    """A parent with a child of each kind once "kids" ran: processed, ignored, failed without
    policy (still unprocessed), and pending ones in "later" (one a parent itself)."""
    return {"name": "top", "queueName": "top", "opts": {"jobId": "root"}, "children": [
        {"name": "ok", "queueName": kids, "opts": {"jobId": "ok"}, "data": {"__return": [1]}},
        {"name": "ignored", "queueName": kids, "opts": {"jobId": "ign",
                                                         "ignoreDependencyOnFailure": True},
         "data": {"__fail": "ignored boom"}},
        {"name": "stuck", "queueName": kids, "opts": {"jobId": "stuck"},
         "data": {"__fail": "stuck boom"}},
        {"name": "pending", "queueName": "later", "opts": {"jobId": "pending"}},
        {"name": "nested", "queueName": "later", "opts": {"jobId": "nested"}, "children": [
            {"name": "deep", "queueName": "later", "opts": {"jobId": "deep", "delay": 60000}},
            {"name": "deep2", "queueName": "later", "opts": {"jobId": "deep2"}}]},
    ]}


def python_processor(job: Job) -> Any:
    data = job.data or {}
    if "__fail" in data:
        raise RuntimeError(data["__fail"])
    return data.get("__return", {"ok": True})


def build(node6: NodeBullMQ, redis_url: str, prefix: str, by: str) -> None:
    if by == "node":
        node6.call("addFlow", prefix=prefix, flow=node_flow())
        outcomes = node6.call("process", queue="kids", prefix=prefix, count=3, timeoutMs=15000)
        assert sorted(o["event"] for o in outcomes) == ["completed", "failed", "failed"]
        return
    with FlowProducer(connection=redis_url, prefix=prefix) as producer:
        producer.add(node_flow())
    with Queue("kids", connection=redis_url, prefix=prefix) as kids, \
         Worker("kids", python_processor, connection=redis_url, prefix=prefix, drain_delay=0.2):
        from helpers import wait_for

        wait_for(lambda: kids.get_job_counts("completed", "failed")
                 == {"completed": 1, "failed": 2})


@pytest.mark.parametrize("by", ["node", "python"])
def test_dependency_reads_match_node(node6, redis_url, prefix, by):
    build(node6, redis_url, prefix, by)
    with Queue("top", connection=redis_url, prefix=prefix) as top:
        root = Job.from_id(top, "root")
        assert root is not None
        ours = root.get_dependencies()
        theirs = node6.call("getDependencies", prefix=prefix, queue="top", jobId="root")
        assert ours == theirs
        assert ours["processed"] == {f"{prefix}:kids:ok": [1]}
        assert ours["ignored"] == {f"{prefix}:kids:ign": "ignored boom"}
        for opts in (
            {"processed": {}, "unprocessed": {}, "ignored": {}, "failed": {}},
            {"unprocessed": {"cursor": 0, "count": 2}, "failed": {"count": 3}},
            {"processed": {"count": 1}},
        ):
            theirs = node6.call("getDependencies", prefix=prefix, queue="top", jobId="root",
                                opts=opts)
            assert root.get_dependencies(opts) == theirs, opts
        expected = node6.call("getIgnoredChildrenFailures", prefix=prefix, queue="top",
                              jobId="root")
        assert root.get_ignored_children_failures() == expected
        assert root.get_failed_children_values() == node6.call(
            "getFailedChildrenValues", prefix=prefix, queue="top", jobId="root") == expected


def test_node5_reads_the_same_dependencies(node5, node6, redis_url, prefix):
    build(node6, redis_url, prefix, "python")
    with Queue("top", connection=redis_url, prefix=prefix) as top:
        root = Job.from_id(top, "root")
        assert root is not None
        assert root.get_dependencies() == node5.call(
            "getDependencies", prefix=prefix, queue="top", jobId="root")
        assert root.get_ignored_children_failures() == node5.call(
            "getIgnoredChildrenFailures", prefix=prefix, queue="top", jobId="root")
    with FlowProducer(connection=redis_url, prefix=prefix) as producer:
        opts = {"id": "root", "queueName": "top"}
        assert shape(producer.get_flow(opts)) == shape(node5.call("getFlow", prefix=prefix,
                                                                  opts=opts))


def shape(node: Any) -> Any:
    """(id, name, children) of a Node getFlow reply or of our JobNode."""
    if isinstance(node, JobNode):
        return (node.job.id, node.job.name, [shape(c) for c in node.children])
    return (node["job"]["id"], node["job"]["name"],
            [shape(c) for c in (node["children"] or []) if c is not None])


@pytest.mark.parametrize("by", ["node", "python"])
def test_get_flow_matches_node(node6, redis_url, prefix, by):
    build(node6, redis_url, prefix, by)
    with FlowProducer(connection=redis_url, prefix=prefix) as producer:
        for opts in ({"id": "root", "queueName": "top"},
                     {"id": "root", "queueName": "top", "depth": 2},
                     {"id": "root", "queueName": "top", "depth": 1},
                     {"id": "nested", "queueName": "later", "maxChildren": 1}):
            theirs = node6.call("getFlow", prefix=prefix, opts=opts)
            ours = producer.get_flow(opts)
            assert shape(ours) == shape(theirs), opts
            if opts.get("depth") != 1:
                assert ours is not None and ours.children
        ok = producer.get_flow({"id": "ok", "queueName": "kids"})
        theirs = node6.call("getFlow", prefix=prefix, opts={"id": "ok", "queueName": "kids"})
        assert ok is not None and ok.job.to_dict()["returnvalue"] == theirs["job"]["returnvalue"]
        assert producer.get_flow({"id": "nope", "queueName": "top"}) is None
        assert node6.call("getFlow", prefix=prefix, opts={"id": "nope", "queueName": "top"}) \
            is None


FLOW_IDS = ["root", "ok", "ign", "stuck", "pending", "nested", "deep", "deep2"]


@pytest.mark.parametrize("scenario", ["mixed", "all-pending"])
def test_remove_unprocessed_children_same_redis_state_as_node(node6, redis_url, raw, prefix,
                                                               scenario):
    sides = {"n": f"{prefix}n", "u": f"{prefix}u"}
    for side in sides.values():
        if scenario == "mixed":
            node6.call("addFlow", prefix=side, flow=node_flow())
            node6.call("process", queue="kids", prefix=side, count=3, timeoutMs=15000)
            raw.set(f"{side}:later:deep2:lock", "someone")  # deep2 is running elsewhere
        else:
            node6.call("addFlow", prefix=side, flow={
                "name": "top", "queueName": "top", "opts": {"jobId": "root"},
                "children": [c for c in node_flow()["children"] if c["queueName"] == "later"]})
    node6.call("removeUnprocessedChildren", prefix=sides["n"], queue="top", jobId="root")
    with Queue("top", connection=redis_url, prefix=sides["u"]) as top:
        root = Job.from_id(top, "root")
        assert root is not None
        removed = root.remove_unprocessed_children()
    assert removed == (3 if scenario == "mixed" else 4)  # mixed: pending, deep, nested
    ours, theirs = normalized(raw, sides["u"], FLOW_IDS), normalized(raw, sides["n"], FLOW_IDS)
    # worker bookkeeping of the "process" runs is timing, not protocol; the removals follow
    # SMEMBERS order, which may differ between two sets whose members differ (the prefixes)
    for state in (ours, theirs):
        for key in [k for k in state if k.endswith((":stalled-check", ":metrics:completed",
                                                     ":metrics:failed"))]:
            del state[key]
        for key, (kind, value) in list(state.items()):
            if kind == "stream":
                state[key] = (kind, sorted(value, key=lambda e: sorted(e.items())))
    if ours != theirs:  # pragma: no cover - a readable diff of the first difference
        for key in sorted(set(ours) | set(theirs)):
            assert ours.get(key) == theirs.get(key), key
    if scenario == "all-pending":
        assert ours["<p>:top:wait"][1] == ["j0"]
    else:
        assert "<p>:later:j7" in ours and "<p>:later:j4" not in ours  # deep2 kept, pending gone


def test_node_workers_finish_a_flow_we_retried(node6, redis_url, raw, prefix, log_events):
    # four levels, failParentOnFailure all the way up (BullMQ issue 2336); the leaf fails
    # on its first attempt only, its sibling completes
    flow: dict[str, Any] = {"name": "l3", "queueName": "b", "opts": {
        "jobId": "l3", "failParentOnFailure": True}, "data": {"__failTimes": 1}}
    for level, queue in ((2, "a"), (1, "b")):
        flow = {"name": f"l{level}", "queueName": queue, "children": [flow],
                "opts": {"jobId": f"l{level}", "failParentOnFailure": True}}
    flow = {"name": "l0", "queueName": "a", "opts": {"jobId": "l0"}, "children": [
        flow, {"name": "side", "queueName": "b", "opts": {"jobId": "side"},
               "data": {"__return": "fine"}}]}
    node6.call("addFlow", prefix=prefix, flow=flow)
    runs = [node6.call("process", queue=q, prefix=prefix, count=n, timeoutMs=15000)
            for q, n in (("b", 2), ("a", 1), ("b", 1), ("a", 1))]
    assert [o["event"] for run in runs for o in run if o["jobId"] != "side"] == ["failed"] * 4
    assert raw.zscore(f"{prefix}:a:failed", "l0") is not None

    with Queue("a", connection=redis_url, prefix=prefix) as queue:
        root = Job.from_id(queue, "l0")
        assert root is not None
        moved = root.retry_tree()
    assert [(m.job_id, m.to_state) for m in moved] == [
        ("l3", "waiting"), ("l2", "waiting-children"), ("l1", "waiting-children"),
        ("l0", "waiting-children")]
    # Node's view of the bookkeeping right after the retry
    for parent, queue_name, child in (("l0", "a", "b:l1"), ("l1", "b", "a:l2"),
                                      ("l2", "a", "b:l3")):
        deps = node6.call("getDependencies", prefix=prefix, queue=queue_name, jobId=parent)
        assert deps["unprocessed"] == [f"{prefix}:{child}"] and deps["failed"] == []
        state = node6.call("getJob", prefix=prefix, queue=queue_name, jobId=parent)["state"]
        assert state == "waiting-children"
    assert node6.call("getJob", prefix=prefix, queue="b", jobId="l3")["state"] == "waiting"

    runs = [node6.call("process", queue=q, prefix=prefix, count=1, timeoutMs=15000)
            for q in ("b", "a", "b", "a")]
    assert [(o["jobId"], o["event"]) for run in runs for o in run] == [
        ("l3", "completed"), ("l2", "completed"), ("l1", "completed"), ("l0", "completed")]
    deps = node6.call("getDependencies", prefix=prefix, queue="a", jobId="l0")
    assert deps == {"processed": {f"{prefix}:b:l1": {f"{prefix}:a:l2": {f"{prefix}:b:l3": {
        "ok": True, "id": "l3"}}}, f"{prefix}:b:side": "fine"},
        "unprocessed": [], "failed": [], "ignored": {}}
    with Queue("a", connection=redis_url, prefix=prefix) as queue:
        root = Job.from_id(queue, "l0")
        assert root is not None and root.get_dependencies() == deps


def test_failed_pages_past_the_first_differ_from_node_on_purpose(node6, redis_url, raw, prefix):
    node6.call("addFlow", prefix=prefix, flow={
        "name": "top", "queueName": "top", "opts": {"jobId": "root"},
        "children": [{"name": "c", "queueName": "kids", "opts": {"jobId": f"c{i}"}}
                     for i in range(4)]})
    for i in range(4):  # as four failParentOnFailure children leave it
        raw.zadd(f"{prefix}:top:root:unsuccessful", {f"{prefix}:kids:c{i}": i})
    with Queue("top", connection=redis_url, prefix=prefix) as top:
        root = Job.from_id(top, "root")
        assert root is not None
        first = {"failed": {"cursor": 0, "count": 2}}
        assert root.get_dependencies(first) == node6.call(
            "getDependencies", prefix=prefix, queue="top", jobId="root", opts=first)
        second = {"failed": {"cursor": 2, "count": 2}}
        theirs = node6.call("getDependencies", prefix=prefix, queue="top", jobId="root",
                            opts=second)
        assert theirs == {"failed": [], "nextFailedCursor": 4}  # Node: ZRANGE 2 1
        assert root.get_dependencies(second) == {
            "failed": [f"{prefix}:kids:c2", f"{prefix}:kids:c3"], "nextFailedCursor": 4}
