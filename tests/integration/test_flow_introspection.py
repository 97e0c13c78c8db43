"""A parent's view of its children: get_dependencies, get_ignored_children_failures,
remove_unprocessed_children and FlowProducer.get_flow, against a real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import events, wait_for
from jobfactory import snapshot

from bullmq_sync.keys import OP_SEGMENT
from bullmq_sync import (
    ClientClosed,
    Connection,
    FlowProducer,
    InvalidArgument,
    Job,
    JobNode,
    Queue,
    Worker,
)


@pytest.fixture
def flows(connection: Connection, prefix: str) -> Iterator[FlowProducer]:
    with FlowProducer(connection=connection, prefix=prefix) as producer:
        yield producer


def without_ops(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if ":" + OP_SEGMENT not in k}


def processor(job: Job) -> Any:
    if job.data.get("fail"):
        raise RuntimeError(f"{job.name} failed")
    return {"done": job.name}


def finished_flow(flows: FlowProducer, connection: Connection, prefix: str) -> JobNode:
    """A parent in waiting-children with one child of each kind: processed, pending, failed
    (failParentOnFailure is not used: the parent must keep waiting), ignored."""
    root = flows.add({"name": "top", "queueName": "top", "children": [
        {"name": "ok", "queueName": "kids"},
        {"name": "ignored", "queueName": "kids", "data": {"fail": True},
         "opts": {"ignoreDependencyOnFailure": True}},
        {"name": "pending", "queueName": "later", "opts": {"jobId": "p1"}},
        {"name": "stuck", "queueName": "kids", "data": {"fail": True}},
    ]})
    with Worker("kids", processor, connection=connection, prefix=prefix, drain_delay=0.2):
        wait_for(lambda: root.job.get_dependencies_count()["processed"] == 1
                 and root.job.get_dependencies_count()["ignored"] == 1
                 and connection.execute("ZCARD", f"{prefix}:kids:failed") == 2)
    return root


def test_get_dependencies_without_options_lists_everything(flows, connection, prefix):
    root = finished_flow(flows, connection, prefix)
    ok, ignored, pending, stuck = (n.job for n in root.children)
    deps = root.job.get_dependencies()
    assert list(deps) == ["processed", "unprocessed", "failed", "ignored"]
    assert deps["processed"] == {ok.key: {"done": "ok"}}
    assert sorted(deps["unprocessed"]) == sorted([pending.key, stuck.key])  # Redis's set order
    assert deps["failed"] == []
    assert deps["ignored"] == {ignored.key: "ignored failed"}
    assert root.job.getDependencies() == deps
    assert root.job.get_dependencies({}) == deps
    assert root.job.get_dependencies({"processed": None, "failed": False}) == deps


def test_get_dependencies_pages(flows, connection, prefix):
    root = finished_flow(flows, connection, prefix)
    ok, ignored, pending, stuck = (n.job for n in root.children)
    assert root.job.get_dependencies(processed=True) == {
        "processed": {ok.key: {"done": "ok"}}, "nextProcessedCursor": 0}
    page = root.job.getDependencies({
        "unprocessed": {"count": 10}, "ignored": {}, "failed": {"cursor": 0, "count": 5}})
    assert list(page) == ["ignored", "nextIgnoredCursor", "failed", "nextFailedCursor",
                          "unprocessed", "nextUnprocessedCursor"]
    assert page["ignored"] == {ignored.key: "ignored failed"}
    assert page["failed"] == [] and page["nextFailedCursor"] == 5
    assert set(page["unprocessed"]) == {pending.key, stuck.key}
    assert page["nextUnprocessedCursor"] == 0


def test_failed_children_pages_follow_the_cursor(flows, connection, raw, prefix):
    root = flows.add({"name": "top", "queueName": "top", "children": [
        {"name": f"c{i}", "queueName": "kids", "data": {"fail": True},
         "opts": {"failParentOnFailure": True}} for i in range(5)]})
    # five failed children recorded as failing the parent (scores: failure order)
    keys = [n.job.key for n in root.children]
    for score, key in enumerate(keys):
        raw.zadd(root.job.key + ":unsuccessful", {key: score})
    first = root.job.get_dependencies(failed={"count": 2})
    second = root.job.get_dependencies(failed={"cursor": first["nextFailedCursor"], "count": 2})
    third = root.job.get_dependencies(failed={"cursor": second["nextFailedCursor"], "count": 2})
    assert first["failed"] + second["failed"] + third["failed"] == keys
    assert third["nextFailedCursor"] == 6


def test_ignored_children_failures(flows, connection, prefix):
    root = finished_flow(flows, connection, prefix)
    ignored = root.children[1].job
    expected = {ignored.key: "ignored failed"}
    assert root.job.get_ignored_children_failures() == expected
    assert root.job.getIgnoredChildrenFailures() == expected
    assert root.job.get_failed_children_values() == expected
    assert root.job.getFailedChildrenValues() == expected
    assert root.children[0].job.get_ignored_children_failures() == {}


BAD_DEPENDENCY_OPTIONS: dict[str, Any] = {
    "unknown-type": {"completed": {}},
    "unknown-page-key": {"processed": {"offset": 3}},
    "negative-cursor": {"failed": {"cursor": -1}},
    "zero-count": {"unprocessed": {"count": 0}},
    "count-not-int": {"ignored": {"count": "10"}},
    "page-not-dict": {"processed": 3},
    "not-a-dict": ["processed"],
}


@pytest.mark.parametrize("case", sorted(BAD_DEPENDENCY_OPTIONS))
def test_bad_dependency_options_are_refused(flows, raw, prefix, case):
    root = flows.add({"name": "top", "queueName": "top", "children": [
        {"name": "c", "queueName": "kids"}]})
    with pytest.raises(InvalidArgument):
        root.job.get_dependencies(BAD_DEPENDENCY_OPTIONS[case])
    with pytest.raises(InvalidArgument):
        root.job.get_dependencies(processed={"cursor": 0, "count": -5})


# -- remove_unprocessed_children -------------------------------------------------------


def test_remove_unprocessed_children_keeps_processed_failed_and_locked(
    flows, connection, raw, prefix, log_events
):
    root = finished_flow(flows, connection, prefix)
    ok, ignored, pending, stuck = (n.job for n in root.children)
    extra = flows.add({"name": "nested", "queueName": "later", "opts": {
        "parent": {"id": root.job.id, "queue": f"{prefix}:top"}},
        "children": [{"name": "deep", "queueName": "kids", "opts": {"delay": 60000}}]})
    busy = flows.add({"name": "busy", "queueName": "later", "opts": {
        "parent": {"id": root.job.id, "queue": f"{prefix}:top"}}})
    raw.set(busy.job.key + ":lock", "worker-token")
    before_events = len(events(raw, prefix, "later"))

    removed = root.job.remove_unprocessed_children()

    assert removed == 3  # pending, nested and its child deep
    for gone in (pending, extra.job, extra.children[0].job):
        assert not raw.exists(gone.key)
    assert not raw.lrange(f"{prefix}:later:wait", 0, -1) == [pending.id]
    assert not raw.zcard(f"{prefix}:kids:delayed")
    assert not raw.zscore(f"{prefix}:later:waiting-children", extra.job.id)
    for kept in (root.job, ok, ignored, stuck, busy.job):
        assert raw.exists(kept.key)
    assert raw.smembers(root.job.key + ":dependencies") == {stuck.key, busy.job.key}
    assert raw.zscore(f"{prefix}:top:waiting-children", root.job.id) is not None
    # as BullMQ: "nested" is released when its last child goes, then removed from wait
    later = [(e["event"], e["jobId"], e.get("prev")) for e in events(raw, prefix, "later")]
    nested = [e for e in later[before_events:] if e[1] == extra.job.id]
    assert nested == [("waiting", extra.job.id, "waiting-children"),
                      ("removed", extra.job.id, "wait")]
    assert ("removed", pending.id, "wait") in later[before_events:]
    removed_logs = [e for e in log_events if e["event"] == "job.removed"]
    assert sorted((e["job_id"], e["from_state"]) for e in removed_logs) == sorted([
        (pending.id, "wait"), (extra.job.id, "wait"), (extra.children[0].job.id, "delayed")])


def test_removing_the_last_pending_child_releases_the_parent(flows, raw, prefix, log_events):
    root = flows.add({"name": "top", "queueName": "top", "children": [
        {"name": "a", "queueName": "kids"}, {"name": "b", "queueName": "kids"}]})
    before = len(events(raw, prefix, "top"))
    assert root.job.removeUnprocessedChildren() == 2
    assert raw.lrange(f"{prefix}:top:wait", 0, -1) == [root.job.id]
    assert raw.zrange(f"{prefix}:top:marker", 0, -1) == ["0"]
    assert [(e["event"], e["prev"]) for e in events(raw, prefix, "top")[before:]] == [
        ("waiting", "waiting-children")]
    assert [e["to_state"] for e in log_events if e["event"] == "job.waiting"] == ["waiting"]
    assert root.job.remove_unprocessed_children() == 0


def test_remove_unprocessed_children_replayed_call_changes_nothing(flows, connection, raw,
                                                                    prefix):
    root = flows.add({"name": "top", "queueName": "top", "children": [
        {"name": "a", "queueName": "kids"}]})
    op = root.job.queue.keys.op("fixed-token")
    first = connection.run_script("removeUnprocessedChildren", (root.job.key, op), (60000, ""))
    after = snapshot(raw, prefix)
    again = connection.run_script("removeUnprocessedChildren", (root.job.key, op), (60000, ""))
    assert snapshot(raw, prefix) == after
    assert json.loads(again) == {**json.loads(first), "replayed": True}


# -- get_flow ---------------------------------------------------------------------------


def tree_ids(node: JobNode | None) -> Any:
    assert node is not None
    return (node.job.id, sorted(tree_ids(child) for child in node.children))


def test_get_flow_returns_the_stored_tree(flows, connection, prefix):
    root = finished_flow(flows, connection, prefix)
    got = flows.get_flow({"id": root.job.id, "queueName": "top"})
    assert isinstance(got, JobNode) and got.job.name == "top"
    assert tree_ids(got) == tree_ids(root)
    by_id = {n.job.id: n.job for n in got.walk()}
    assert by_id[root.children[0].job.id].return_value == {"done": "ok"}
    assert by_id[root.children[1].job.id].failed_reason == "ignored failed"
    assert flows.getFlow({"id": root.job.id, "queueName": "top", "depth": 1}).children == []
    assert flows.get_flow(id=root.job.id, queue_name="top") is not None
    assert flows.get_flow({"id": "nope", "queueName": "top"}) is None


def test_get_flow_depth_and_max_children(flows, connection, prefix):
    root = flows.add({"name": "l0", "queueName": "a", "children": [
        {"name": "l1", "queueName": "b", "children": [
            {"name": f"l2-{i}", "queueName": "a", "children": [
                {"name": "l3", "queueName": "b"}]} for i in range(3)]}]})
    full = flows.get_flow({"id": root.job.id, "queueName": "a"})
    assert tree_ids(full) == tree_ids(root)
    two = flows.get_flow({"id": root.job.id, "queueName": "a", "depth": 2})
    assert [len(n.children) for n in two.walk()] == [1, 0]
    few = flows.get_flow({"id": root.job.id, "queueName": "a", "maxChildren": 2})
    # SSCAN's COUNT is a hint (a small set may come whole), as BullMQ sees it too
    assert 2 <= len(few.children[0].children) <= 3
    # children that failed their parent are read with ZRANGE: exactly maxChildren of them
    mid = root.children[0].job
    for score, grandchild in enumerate(root.children[0].children):
        connection.execute("SREM", mid.key + ":dependencies", grandchild.job.key)
        connection.execute("ZADD", mid.key + ":unsuccessful", score, grandchild.job.key)
    few = flows.get_flow({"id": root.job.id, "queueName": "a", "maxChildren": 2})
    assert [n.job.name for n in few.children[0].children] == ["l2-0", "l2-1"]
    other = FlowProducer(connection=connection)  # default prefix "bull"
    with other:
        assert other.get_flow({"id": root.job.id, "queueName": "a"}) is None
        assert tree_ids(other.get_flow({"id": root.job.id, "queueName": "a", "prefix": prefix})
                        ) == tree_ids(root)


BAD_FLOW_OPTIONS: dict[str, Any] = {
    "missing-id": {"queueName": "a"},
    "missing-queue": {"id": "1"},
    "unknown": {"id": "1", "queueName": "a", "children": 3},
    "depth-zero": {"id": "1", "queueName": "a", "depth": 0},
    "max-children-zero": {"id": "1", "queueName": "a", "maxChildren": 0},
    "queue-with-colon": {"id": "1", "queueName": "a:b"},
    "id-not-str": {"id": 1.5, "queueName": "a"},
    "not-a-dict": "1",
}


@pytest.mark.parametrize("case", sorted(BAD_FLOW_OPTIONS))
def test_bad_get_flow_options_are_refused(flows, case):
    with pytest.raises(InvalidArgument):
        flows.get_flow(BAD_FLOW_OPTIONS[case])


def test_get_flow_on_a_closed_producer(connection):
    producer = FlowProducer(connection=connection)
    producer.close()
    with pytest.raises(ClientClosed):
        producer.get_flow({"id": "1", "queueName": "a"})


def test_remove_unprocessed_children_of_a_job_without_children(connection, raw, prefix):
    with Queue("q", connection=connection, prefix=prefix) as queue:
        job = queue.add("solo", {})
        before = without_ops(snapshot(raw, prefix))
        assert job.remove_unprocessed_children() == 0
        assert without_ops(snapshot(raw, prefix)) == before
