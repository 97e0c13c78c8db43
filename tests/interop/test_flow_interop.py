"""FlowProducer against real Node BullMQ 6.7.0: flows cross both ways, and the same flow added
by Node and by us leaves the same Redis state (timestamps and UUIDs normalised)."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
import redis
from nodebullmq import NodeBullMQ, wait_until

from bullmq_sync import FlowProducer, Job, JobNode, Queue, Worker

pytestmark = pytest.mark.interop

_TIME_FIELDS = {"timestamp", "processedOn", "finishedOn"}
_JSON_FIELDS = {"opts", "parent", "data", "returnvalue"}
_MS = re.compile(r"^\d{13}$")


def node_ids(tree: dict[str, Any]) -> list[str]:
    """Ids of a Node ``addFlow`` reply tree, depth first."""
    return [tree["id"]] + [i for child in tree["children"] for i in node_ids(child)]


def our_ids(node: JobNode) -> list[str]:
    return [n.job.id for n in node.walk()]


def normalized(raw: redis.Redis, prefix: str, ids: list[str]) -> dict[str, Any]:
    """Every key under ``prefix``: prefix -> <p>, the flow's ids -> j0, j1, ... (tree order),
    times masked, JSON fields parsed (key order is not part of the protocol)."""
    names = {job_id: f"j{index}" for index, job_id in enumerate(ids)}

    def text(value: str) -> str:
        value = value.replace(prefix + ":", "<p>:")
        for job_id, name in names.items():
            value = re.sub(rf"(?<![\w-]){re.escape(job_id)}(?![\w-])", name, value)
        return value

    def js(value: str) -> Any:
        return json.loads(text(value))

    state: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(match=prefix + ":*", count=1000)):
        if ":bqs:op:" in key:
            continue
        kind = raw.type(key)
        if kind == "hash":
            value: Any = {}
            for f, v in raw.hgetall(key).items():
                if key.endswith(":meta") and f == "version":
                    continue
                if f in _TIME_FIELDS:
                    value[f] = "<t>"
                elif f in _JSON_FIELDS or key.endswith(":processed"):
                    value[text(f)] = js(v)
                else:
                    value[text(f)] = text(v)
        elif kind == "list":
            value = [text(v) for v in raw.lrange(key, 0, -1)]
        elif kind == "zset":
            # masked (time) scores: their relative order is timing, not protocol
            value = sorted((text(m), "<t>" if s > 1e12 else s)
                           for m, s in raw.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            value = sorted(text(m) for m in raw.smembers(key))
        elif kind == "stream":
            value = [{f: "<t>" if _MS.match(v) else text(v) for f, v in fields.items()}
                     for _, fields in raw.xrange(key)]
        else:
            value = raw.get(key)
            value = "<t>" if _MS.match(value or "") else value
        state[text(key)] = (kind, value)
    return state


def tree(top: str, kids: str) -> dict[str, Any]:
    """A flow over two queues with every landing rule: waiting-children (own delay and priority
    kept), wait (FIFO and lifo), prioritized, delayed, a nested parent, a policy flag. The
    nested parent comes first, so the insert order (level by level, as Node) shows in wait."""
    return {
        "name": "root", "queueName": top, "data": {"r": [1, "ü"]},
        "opts": {"priority": 4, "attempts": 2, "removeOnComplete": True},
        "children": [
            {"name": "mid", "queueName": top, "opts": {"failParentOnFailure": True, "delay": 500},
             "children": [
                 {"name": "leaf", "queueName": kids, "opts": {"ignoreDependencyOnFailure": True}},
                 {"name": "leaf2", "queueName": kids, "data": {"n": None}},
             ]},
            {"name": "plain", "queueName": kids, "data": {"c": 1}},
            {"name": "urgent", "queueName": kids, "opts": {"priority": 3}},
            {"name": "later", "queueName": kids, "opts": {"delay": 60000}},
            {"name": "front", "queueName": kids, "opts": {"lifo": True, "jobId": "front-id"}},
        ],
    }


def reuse_tree(top: str, kids: str, *, all_done: bool) -> dict[str, Any]:
    children = [{"name": "work", "queueName": kids, "opts": {"jobId": "done-1"}},
                {"name": "work", "queueName": kids, "opts": {"jobId": "done-2"}}]
    if not all_done:
        children.append({"name": "fresh", "queueName": kids})
    return {"name": "root", "queueName": top, "children": children}


def complete_by_node(node6: NodeBullMQ, prefix: str, queue: str, job_ids: list[str]) -> None:
    for index, job_id in enumerate(job_ids):
        node6.call("add", queue=queue, prefix=prefix, name="work",
                   data={"__return": {"v": index}}, opts={"jobId": job_id})
    node6.call("process", queue=queue, prefix=prefix, count=len(job_ids), timeoutMs=10000)


SCENARIOS = ["mixed", "reuse-completed-then-new", "reuse-all-completed", "child-owned-elsewhere"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_redis_state_as_node_flow_producer(node6, redis_url, raw, prefix, scenario):
    sides = {"n": f"{prefix}n", "u": f"{prefix}u"}
    extra: dict[str, list[str]] = {"n": [], "u": []}
    for side, p in sides.items():
        if scenario.startswith("reuse"):
            complete_by_node(node6, p, "kids", ["done-1", "done-2"])
        if scenario == "child-owned-elsewhere":
            first = node6.call("addFlow", prefix=p, flow={
                "name": "first", "queueName": "top",
                "children": [{"name": "c", "queueName": "kids", "opts": {"jobId": "shared"}}]})
            extra[side] = node_ids(first["ids"])

    if scenario == "mixed":
        def flow() -> dict[str, Any]:
            return tree("top", "kids")
    elif scenario == "child-owned-elsewhere":
        def flow() -> dict[str, Any]:
            return {"name": "second", "queueName": "top", "children": [
                {"name": "c", "queueName": "kids", "opts": {"jobId": "shared"}}]}
    else:
        def flow() -> dict[str, Any]:
            return reuse_tree("top", "kids", all_done=scenario == "reuse-all-completed")

    theirs = node6.call("addFlow", prefix=sides["n"], flow=flow())
    with FlowProducer(connection=redis_url, prefix=sides["u"]) as producer:
        ours = producer.add(flow())

    n_ids, u_ids = extra["n"] + node_ids(theirs["ids"]), extra["u"] + our_ids(ours)
    assert len(n_ids) == len(u_ids)
    node_state = normalized(raw, sides["n"], n_ids)
    our_state = normalized(raw, sides["u"], u_ids)
    assert our_state == node_state
    if scenario == "reuse-completed-then-new":
        assert our_state["<p>:top:waiting-children"][1] == [("j0", "<t>")]
    if scenario == "reuse-all-completed":
        assert "<p>:top:waiting-children" not in our_state
        assert our_state["<p>:top:wait"][1] == ["j0"]


def test_node_worker_processes_our_flow_children_first(node6, redis_url, raw, prefix):
    with FlowProducer(connection=redis_url, prefix=prefix) as producer:
        node = producer.add({"name": "sum", "queueName": "top", "children": [
            {"name": "a", "queueName": "kids", "data": {"__return": 2}},
            {"name": "b", "queueName": "kids", "data": {"__return": {"x": 3}}},
            {"name": "mid", "queueName": "top", "children": [
                {"name": "c", "queueName": "kids", "data": {}}]},
        ]})
    root, a, b, mid = (n.job for n in (node, *node.children))
    c = node.children[2].children[0].job
    kids = node6.call("process", queue="kids", prefix=prefix, count=3, timeoutMs=15000)
    assert sorted(o["jobId"] for o in kids) == sorted([a.id, b.id, c.id])
    assert raw.zscore(f"{prefix}:top:waiting-children", root.id) is not None
    top = node6.call("process", queue="top", prefix=prefix, count=2, timeoutMs=15000)
    assert [o["jobId"] for o in top] == [mid.id, root.id]
    assert all(o["event"] == "completed" for o in kids + top)
    kid = f"{prefix}:kids:"
    assert top[0]["returnvalue"] == {kid + c.id: {"ok": True, "id": c.id}}
    expected = {
        kid + a.id: 2, kid + b.id: {"x": 3}, f"{prefix}:top:{mid.id}": top[0]["returnvalue"]
    }
    assert top[1]["returnvalue"] == expected
    with Queue("top", connection=redis_url, prefix=prefix) as queue:
        parent = Job.from_id(queue, root.id)
        assert parent is not None and parent.get_children_values() == expected
        assert parent.get_dependencies_count() == {
            "processed": 3, "unprocessed": 0, "failed": 0, "ignored": 0}


def test_our_worker_processes_a_node_flow(node6, redis_url, raw, prefix):
    reply = node6.call("addFlow", prefix=prefix, flow={
        "name": "total", "queueName": "top", "opts": {"jobId": "root-1"},
        "children": [{"name": "n", "queueName": "kids", "data": {"n": n}} for n in (1, 2, 3)],
    })
    child_ids = [child["id"] for child in reply["ids"]["children"]]
    assert raw.zscore(f"{prefix}:top:waiting-children", "root-1") is not None
    done = threading.Event()
    seen: dict[str, Any] = {}

    def parent(job: Job) -> Any:
        seen["values"] = job.get_children_values()
        done.set()
        return sum(seen["values"].values())

    with Worker("kids", lambda job: job.data["n"] * 10, connection=redis_url, prefix=prefix,
                drain_delay=1):
        wait_until(lambda: raw.zcard(f"{prefix}:kids:completed") == 3, message="children done")
    assert raw.zscore(f"{prefix}:top:waiting-children", "root-1") is None
    assert raw.lrange(f"{prefix}:top:wait", 0, -1) == ["root-1"]
    with Worker("top", parent, connection=redis_url, prefix=prefix, drain_delay=1):
        assert done.wait(10)
        wait_until(lambda: raw.zscore(f"{prefix}:top:completed", "root-1") is not None,
                   message="parent done")
    values = zip(child_ids, (10, 20, 30), strict=True)
    assert seen["values"] == {f"{prefix}:kids:{i}": n for i, n in values}
    view = node6.call("getJob", queue="top", prefix=prefix, jobId="root-1")
    assert view["state"] == "completed" and view["json"]["returnvalue"] == 60


@pytest.mark.parametrize("parent_queue", ["kids", "parents"])
def test_drain_treats_flow_parents_as_node_does(node6, redis_url, raw, parent_queue):
    """The same flow drained by Node and by us leaves the same keys behind."""
    import uuid

    from bullmq_sync import Queue

    def flow():
        return {"name": "parent", "queueName": parent_queue, "opts": {"jobId": "p"},
                "children": [{"name": "child", "queueName": "kids", "opts": {"jobId": "c"}}]}

    results = {}
    for side in ("node", "ours"):
        prefix = f"d{uuid.uuid4().hex[:8]}"
        node6.call("addFlow", prefix=prefix, flow=flow())
        if side == "node":
            node6.call("drain", queue="kids", prefix=prefix, delayed=False)
        else:
            with Queue("kids", connection=redis_url, prefix=prefix) as kids:
                kids.drain()
        results[side] = {
            "keys": sorted(k[len(prefix):] for k in raw.scan_iter(match=f"{prefix}:*")
                           if ":bqs:op:" not in k and not k.endswith(":meta")),
            "parents_wait": raw.lrange(f"{prefix}:{parent_queue}:wait", 0, -1),
            "parent_events": [f["event"] for _, f in raw.xrange(f"{prefix}:{parent_queue}:events")],
        }
    assert results["ours"] == results["node"]
