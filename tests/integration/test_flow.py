"""FlowProducer against a real Redis: the exact state BullMQ 6.7's FlowProducer leaves."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import events, wait_for
from jobfactory import put_job, snapshot

from bullmq_sync import (
    Connection,
    FlowProducer,
    InvalidArgument,
    Job,
    JobNode,
    ParentJobCannotBeReplaced,
    ParentJobNotFound,
    Queue,
    Worker,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def flows(connection: Connection, prefix: str) -> Iterator[FlowProducer]:
    with FlowProducer(connection=connection, prefix=prefix) as producer:
        yield producer






def test_parent_waits_and_children_land_by_their_options(flows, raw, prefix):
    node = flows.add({
        "name": "report", "queueName": "q", "data": {"r": 1},
        "children": [
            {"name": "plain", "queueName": "q", "data": {"c": 1}},
            {"name": "urgent", "queueName": "q", "data": {"c": 2}, "opts": {"priority": 2}},
            {"name": "later", "queueName": "q", "data": {"c": 3}, "opts": {"delay": 5000}},
            {"name": "mine", "queueName": "q", "opts": {"jobId": "my-id", "lifo": True}},
        ],
    })
    assert isinstance(node, JobNode) and isinstance(node.job, Job)
    parent = node.job
    plain, urgent, later, mine = (child.job for child in node.children)
    assert UUID.match(parent.id) and UUID.match(plain.id) and mine.id == "my-id"
    assert all(child.children == [] for child in node.children)
    base = f"{prefix}:q:"

    stored = raw.hgetall(base + parent.id)
    assert set(stored) == {"name", "data", "opts", "timestamp", "delay", "priority"}
    assert stored["data"] == '{"r":1}' and json.loads(stored["opts"]) == {"attempts": 0}
    assert raw.zrange(base + "waiting-children", 0, -1, withscores=True) == [
        (parent.id, float(stored["timestamp"]))
    ]
    assert int(stored["timestamp"]) == parent.timestamp
    assert raw.smembers(base + parent.id + ":dependencies") == {
        base + j.id for j in (plain, urgent, later, mine)
    }

    link = {"id": parent.id, "queueKey": f"{prefix}:q"}
    for child in (plain, urgent, later, mine):
        fields = raw.hgetall(base + child.id)
        assert fields["parentKey"] == base + parent.id
        assert json.loads(fields["parent"]) == link
        assert json.loads(fields["opts"])["parent"] == {"id": parent.id, "queue": f"{prefix}:q"}
        assert child.parent_key == base + parent.id
    assert json.loads(raw.hget(base + "my-id", "opts"))["jobId"] == "my-id"
    assert "jobId" not in json.loads(raw.hget(base + plain.id, "opts"))

    assert raw.lrange(base + "wait", 0, -1) == [plain.id, "my-id"]
    assert raw.zrange(base + "prioritized", 0, -1, withscores=True) == [(urgent.id, 2 * 2**32 + 1)]
    due = later.timestamp + 5000
    assert raw.zrange(base + "delayed", 0, -1, withscores=True) == [(later.id, due * 4096)]
    assert raw.zrange(base + "marker", 0, -1, withscores=True) == [("0", 0.0), ("1", float(due))]
    assert raw.get(base + "id") == "5"
    assert events(raw, prefix, "q") == [
        {"event": "added", "jobId": parent.id, "name": "report"},
        {"event": "waiting-children", "jobId": parent.id},
        {"event": "added", "jobId": plain.id, "name": "plain"},
        {"event": "waiting", "jobId": plain.id},
        {"event": "added", "jobId": urgent.id, "name": "urgent"},
        {"event": "waiting", "jobId": urgent.id},
        {"event": "added", "jobId": later.id, "name": "later"},
        {"event": "delayed", "jobId": later.id, "delay": str(due)},
        {"event": "added", "jobId": "my-id", "name": "mine"},
        {"event": "waiting", "jobId": "my-id"},
    ]
    assert not any("flowAttachmentFailed" in raw.hgetall(k) for k in raw.keys(base + "*")
                   if raw.type(k) == "hash")


def test_parent_keeps_its_own_delay_and_priority_for_later(flows, raw, prefix):
    node = flows.add({"name": "p", "queueName": "q", "opts": {"delay": 3000, "priority": 7},
                      "children": [{"name": "c", "queueName": "q"}]})
    base = f"{prefix}:q:"
    parent = node.job
    assert raw.hget(base + parent.id, "delay") == "3000"
    assert raw.hget(base + parent.id, "priority") == "7"
    assert raw.zscore(base + "waiting-children", parent.id) == parent.timestamp
    assert raw.zcard(base + "delayed") == 0 and raw.zcard(base + "prioritized") == 0


def test_nested_three_levels_across_queues(flows, raw, prefix):
    node = flows.add({
        "name": "top", "queueName": "q1",
        "children": [
            {"name": "mid", "queue_name": "q2", "opts": {"failParentOnFailure": True},
             "children": [{"name": "leaf", "queueName": "q3", "data": {"x": 1}}]},
            {"name": "side", "queueName": "q3", "opts": {"removeDependencyOnFailure": True}},
        ],
    })
    top, mid, side = node.job, node.children[0].job, node.children[1].job
    leaf = node.children[0].children[0].job
    assert [n.job.id for n in node.walk()] == [top.id, mid.id, leaf.id, side.id]
    top_key, mid_key = f"{prefix}:q1:{top.id}", f"{prefix}:q2:{mid.id}"
    assert raw.zrange(f"{prefix}:q1:waiting-children", 0, -1) == [top.id]
    assert raw.zrange(f"{prefix}:q2:waiting-children", 0, -1) == [mid.id]
    assert raw.smembers(top_key + ":dependencies") == {mid_key, f"{prefix}:q3:{side.id}"}
    assert raw.smembers(mid_key + ":dependencies") == {f"{prefix}:q3:{leaf.id}"}
    assert raw.lrange(f"{prefix}:q3:wait", 0, -1) == [leaf.id, side.id]
    assert json.loads(raw.hget(mid_key, "parent")) == {
        "id": top.id, "queueKey": f"{prefix}:q1", "fpof": True}
    assert json.loads(raw.hget(mid_key, "opts"))["fpof"] is True
    assert json.loads(raw.hget(f"{prefix}:q3:{side.id}", "parent"))["rdof"] is True
    assert json.loads(raw.hget(f"{prefix}:q3:{leaf.id}", "parent")) == {
        "id": mid.id, "queueKey": f"{prefix}:q2"}
    assert [e["event"] for e in events(raw, prefix, "q2")] == ["added", "waiting-children"]
    # level by level, as Node's FlowProducer sends them: side is inserted before leaf
    assert [e["jobId"] for e in events(raw, prefix, "q3")] == [side.id, side.id, leaf.id, leaf.id]
    assert [raw.get(f"{prefix}:{q}:id") for q in ("q1", "q2", "q3")] == ["1", "1", "2"]
    assert not raw.exists(f"{prefix}:q1:marker")


def test_node_prefix_and_queues_options(flows, raw, prefix):
    other = prefix + "x"
    node = flows.add(
        {"name": "p", "queueName": "q", "children": [
            {"name": "c", "queueName": "q", "prefix": other}]},
        {"queuesOptions": {"q": {"defaultJobOptions": {"attempts": 4}}}},
    )
    child = node.children[0].job
    assert raw.lrange(f"{other}:q:wait", 0, -1) == [child.id]
    assert raw.hget(f"{other}:q:{child.id}", "parentKey") == f"{prefix}:q:{node.job.id}"
    assert json.loads(raw.hget(f"{prefix}:q:{node.job.id}", "opts")) == {"attempts": 4}
    assert json.loads(raw.hget(f"{other}:q:{child.id}", "opts"))["attempts"] == 4
    for key in raw.scan_iter(match=f"{other}:*"):
        raw.delete(key)


def test_reused_completed_children_release_the_parent_only_at_the_end(flows, raw, prefix):
    base = f"{prefix}:q:"
    put_job(raw, prefix, "q", "done-a", state="completed", extra={"returnvalue": '{"v":1}'})
    # §17: completed child first, new sibling after it -> parent must stay waiting-children
    node = flows.add({"name": "p", "queueName": "q", "children": [
        {"name": "work", "queueName": "q", "opts": {"jobId": "done-a"}},
        {"name": "new", "queueName": "q"},
    ]})
    parent, new = node.job, node.children[1].job
    assert raw.zscore(base + "waiting-children", parent.id) is not None
    assert raw.lrange(base + "wait", 0, -1) == [new.id]
    assert raw.smembers(base + parent.id + ":dependencies") == {base + new.id}
    assert raw.hgetall(base + parent.id + ":processed") == {base + "done-a": '{"v":1}'}
    assert raw.hget(base + "done-a", "parentKey") == base + parent.id
    assert "flowAttachmentFailed" not in raw.hgetall(base + parent.id)
    assert {"event": "duplicated", "jobId": "done-a"} in events(raw, prefix, "q")
    assert parent.get_children_values() == {base + "done-a": {"v": 1}}
    assert parent.get_dependencies_count() == {
        "processed": 1, "unprocessed": 1, "failed": 0, "ignored": 0}


def test_all_children_completed_releases_the_parent_once_the_tree_is_in(flows, raw, prefix):
    base = f"{prefix}:q:"
    put_job(raw, prefix, "q", "done-a", state="completed")
    put_job(raw, prefix, "q", "done-b", state="completed")
    node = flows.add({"name": "p", "queueName": "q", "opts": {"delay": 2000}, "children": [
        {"name": "work", "queueName": "q", "opts": {"jobId": "done-a"}},
        {"name": "work", "queueName": "q", "opts": {"jobId": "done-b"}},
    ]})
    parent = node.job
    assert raw.zscore(base + "waiting-children", parent.id) is None
    score = raw.zscore(base + "delayed", parent.id)
    assert score is not None and score % 4096 == 0 and score / 4096 >= parent.timestamp + 2000
    assert len(raw.hgetall(base + parent.id + ":processed")) == 2
    tail = events(raw, prefix, "q")[-1]
    assert tail == {"event": "delayed", "jobId": parent.id, "delay": str(int(score / 4096))}


def test_child_owned_by_another_parent_keeps_the_new_parent_waiting(flows, raw, prefix):
    base = f"{prefix}:q:"
    first = flows.add({"name": "p1", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"jobId": "shared"}}]})
    put_job(raw, prefix, "q", "done-x", state="completed")
    before = len(events(raw, prefix, "q"))
    second = flows.add({"name": "p2", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"jobId": "shared"}},
        {"name": "c", "queueName": "q", "opts": {"jobId": "done-x"}},
    ]})
    p2 = second.job.id
    assert raw.hget(base + "shared", "parentKey") == base + first.job.id
    assert raw.zscore(base + "waiting-children", p2) is not None
    assert raw.scard(base + p2 + ":dependencies") == 0
    assert "flowAttachmentFailed" not in raw.hgetall(base + p2)
    assert [e["event"] for e in events(raw, prefix, "q")[before:]] == [
        "added", "waiting-children", "duplicated"]  # no "duplicated" for the refused child


def test_root_attaches_to_an_existing_parent_outside_the_flow(flows, raw, prefix):
    base = f"{prefix}:q:"
    outer = flows.add({"name": "outer", "queueName": "q", "children": [
        {"name": "c", "queueName": "q"}]}).job
    node = flows.add({"name": "inner", "queueName": "q",
                      "opts": {"parent": {"id": outer.id, "queue": f"{prefix}:q"}},
                      "children": [{"name": "leaf", "queueName": "q"}]})
    assert base + node.job.id in raw.smembers(base + outer.id + ":dependencies")
    assert raw.zscore(base + "waiting-children", outer.id) is not None
    assert raw.hget(base + node.job.id, "parentKey") == base + outer.id
    # and as a Job object
    again = flows.add({"name": "solo", "queueName": "q", "opts": {"parent": outer}})
    assert raw.hget(base + again.job.id, "parentKey") == base + outer.id


def test_missing_outside_parent_refuses_everything(flows, raw, prefix):
    put_job(raw, prefix, "q", "seed", state="wait")
    before = snapshot(raw, prefix)
    with pytest.raises(ParentJobNotFound):
        flows.add({"name": "r", "queueName": "q",
                   "opts": {"parent": {"id": "nope", "queue": f"{prefix}:q"}},
                   "children": [{"name": "c", "queueName": "q"}]})
    assert snapshot(raw, prefix) == before


def test_root_owned_by_another_parent_refuses_everything(flows, raw, prefix):
    first = flows.add({"name": "p1", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"jobId": "kid"}}]})
    other = flows.add({"name": "p2", "queueName": "q",
                       "children": [{"name": "c", "queueName": "q"}]})
    before = snapshot(raw, prefix)
    with pytest.raises(ParentJobCannotBeReplaced):
        flows.add({"name": "c", "queueName": "q",
                   "opts": {"jobId": "kid", "parent": {"id": other.job.id, "queue": f"{prefix}:q"}},
                   "children": [{"name": "g", "queueName": "q"}]})
    assert snapshot(raw, prefix) == before
    assert first.job.id


BAD_FLOWS = {
    "no-name": {"queueName": "q"},
    "no-queue": {"name": "p"},
    "child-without-name": {"name": "p", "queueName": "q", "children": [{"queueName": "q"}]},
    "bad-option": {"name": "p", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"priority": -1}}]},
    "unknown-option": {"name": "p", "queueName": "q", "opts": {"colour": "red"}},
    "two-policies": {"name": "p", "queueName": "q", "children": [
        {"name": "c", "queueName": "q",
         "opts": {"failParentOnFailure": True, "ignoreDependencyOnFailure": True}}]},
    "dedup-on-parent": {"name": "p", "queueName": "q", "opts": {"deduplication": {"id": "d"}},
                        "children": [{"name": "c", "queueName": "q"}]},
    "dedup-on-child": {"name": "p", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"deduplication": {"id": "d"}}}]},
    "repeated-id": {"name": "p", "queueName": "q", "children": [
        {"name": "c", "queueName": "q", "opts": {"jobId": "same"}},
        {"name": "d", "queueName": "q", "children": [
            {"name": "e", "queueName": "q", "opts": {"jobId": "same"}}]}]},
    "integer-id": {"name": "p", "queueName": "q", "opts": {"jobId": "42"}},
    "children-not-a-list": {"name": "p", "queueName": "q", "children": {"name": "c"}},
    "unknown-field": {"name": "p", "queueName": "q", "kids": []},
    "queue-with-colon": {"name": "p", "queueName": "a:b"},
    "not-json": {"name": "p", "queueName": "q", "data": {"x": object()}},
}


@pytest.mark.parametrize("case", sorted(BAD_FLOWS))
def test_bad_flow_is_refused_before_anything_is_written(flows, raw, prefix, case):
    flows.add({"name": "seed", "queueName": "q", "children": [{"name": "c", "queueName": "q"}]})
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        flows.add(BAD_FLOWS[case])
    with pytest.raises(InvalidArgument):
        flows.add_bulk([{"name": "ok", "queueName": "q"}, BAD_FLOWS[case]])
    assert snapshot(raw, prefix) == before


def test_add_bulk_is_one_call_and_refuses_an_id_repeated_across_flows(flows, raw, prefix):
    nodes = flows.add_bulk([
        {"name": "a", "queueName": "q", "children": [{"name": "a1", "queueName": "q"}]},
        {"name": "b", "queueName": "q", "opts": {"jobId": "b-root"}},
    ])
    assert [n.job.name for n in nodes] == ["a", "b"] and nodes[1].job.id == "b-root"
    assert raw.zrange(f"{prefix}:q:waiting-children", 0, -1) == [nodes[0].job.id]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [nodes[0].children[0].job.id, "b-root"]
    assert flows.add_bulk([]) == []
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        flows.addBulk([{"name": "x", "queueName": "q", "opts": {"jobId": "dup"}},
                       {"name": "y", "queueName": "q", "opts": {"jobId": "dup"}}])
    assert snapshot(raw, prefix) == before


def test_a_repeated_call_with_the_same_token_is_not_applied_twice(flows, raw, prefix, monkeypatch):
    from bullmq_sync import connection as connection_module

    monkeypatch.setattr(connection_module.TOKENS, "next", lambda: "fixed-token")
    flow = {"name": "p", "queueName": "q", "opts": {"jobId": "p1"},
            "children": [{"name": "c", "queueName": "q", "opts": {"jobId": "c1"}}]}
    flows.add(flow)
    state = snapshot(raw, prefix)
    node = flows.add(flow)
    assert node.job.id == "p1" and snapshot(raw, prefix) == state


def test_our_worker_runs_children_then_the_parent_with_their_values(
    flows, raw, prefix, redis_url
):
    node = flows.add({"name": "sum", "queueName": "q", "children": [
        {"name": "n", "queueName": "q", "data": {"n": 2}},
        {"name": "n", "queueName": "q", "data": {"n": 3}},
    ]})
    seen: dict[str, Any] = {}
    done = threading.Event()

    def process(job: Job) -> Any:
        if job.name == "sum":
            seen["values"] = job.get_children_values()
            seen["counts"] = job.get_dependencies_count()
            done.set()
            return sum(v["n"] for v in seen["values"].values())
        return {"n": job.data["n"]}

    with Worker("q", process, connection=redis_url, prefix=prefix, drain_delay=1):
        assert done.wait(10)
        wait_for(lambda: raw.zscore(f"{prefix}:q:completed", node.job.id) is not None)
    kids = [f"{prefix}:q:{c.job.id}" for c in node.children]
    assert seen["values"] == {kids[0]: {"n": 2}, kids[1]: {"n": 3}}
    assert seen["counts"] == {"processed": 2, "unprocessed": 0, "failed": 0, "ignored": 0}
    assert raw.hget(f"{prefix}:q:{node.job.id}", "returnvalue") == "5"


def test_logs_one_flow_event(flows, prefix, log_events):
    node = flows.add({"name": "p", "queueName": "q", "children": [
        {"name": "c", "queueName": "q"}, {"name": "d", "queueName": "q"}]})
    added = [e for e in log_events if e["event"] == "flow.added"]
    assert len(added) == 1
    assert added[0]["root"] == f"{prefix}:q:{node.job.id}" and added[0]["jobs"] == 3
    per_job = [e for e in log_events if e["event"] == "job.added"]
    assert [e["to_state"] for e in per_job] == ["waiting-children", "waiting", "waiting"]
    assert all("data" not in e for e in log_events)


def test_producer_options_lifecycle_and_closed_use(redis_url, prefix):
    producer = FlowProducer({"connection": redis_url, "prefix": prefix})
    assert producer.prefix == prefix and repr(producer).startswith("<FlowProducer")
    producer.close()
    producer.close()
    from bullmq_sync import ClientClosed

    with pytest.raises(ClientClosed):
        producer.add({"name": "p", "queueName": "q"})
    with pytest.raises(InvalidArgument):
        FlowProducer({"colour": "red"}, connection=redis_url)
    with pytest.raises(InvalidArgument):
        FlowProducer(connection=redis_url).add({"name": "p", "queueName": "q"}, {"bad": 1})


def test_queue_sees_flow_jobs(flows, connection, prefix):
    node = flows.add({"name": "p", "queueName": "q", "children": [{"name": "c", "queueName": "q"}]})
    queue = Queue("q", connection=connection, prefix=prefix)
    assert [j.id for j in queue.get_waiting_children()] == [node.job.id]
    assert str(queue.get_job_state(node.children[0].job.id)) == "waiting"


def test_readme_flow_example(redis_url, prefix):
    """The FlowProducer example of the README (kept verbatim in the README section)."""
    from bullmq_sync import FlowProducer, Worker

    def fetch(job):
        return {"words": 100 * job.data["page"]}

    def render(job):
        values = job.get_children_values()  # {"<prefix>:pages:<id>": {"words": ...}, ...}
        return sum(v["words"] for v in values.values())

    with FlowProducer(connection=redis_url, prefix=prefix) as flows:
        tree = flows.add({
            "name": "render-report",
            "queueName": "reports",
            "data": {"report": 7},
            "children": [
                {"name": "fetch", "queueName": "pages", "data": {"page": 1}},
                {"name": "fetch", "queueName": "pages", "data": {"page": 2},
                 "opts": {"priority": 1, "failParentOnFailure": True}},
            ],
        })
        report = tree.job  # waits in "waiting-children" until both pages are done
        assert report.get_state() == "waiting-children"

        with Worker("pages", fetch, connection=redis_url, prefix=prefix, drain_delay=1), \
             Worker("reports", render, connection=redis_url, prefix=prefix, drain_delay=1):
            wait_for(lambda: report.get_state() == "completed")
        report.refresh()
        assert report.return_value == 300
        assert report.get_dependencies_count()["processed"] == 2
