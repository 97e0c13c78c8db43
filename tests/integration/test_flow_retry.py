"""job.retry_tree(): a failed flow back to work in one atomic call, then run to completion by
real workers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import events, wait_for
from jobfactory import snapshot

from bullmq_sync.keys import OP_SEGMENT
from bullmq_sync import (
    Connection,
    FlowProducer,
    FlowTooLarge,
    InvalidArgument,
    Job,
    JobNode,
    JobNotFound,
    JobNotInState,
    Queue,
    RetriedJob,
    Worker,
)


@pytest.fixture
def flows(connection: Connection, prefix: str) -> Iterator[FlowProducer]:
    with FlowProducer(connection=connection, prefix=prefix) as producer:
        yield producer


class Switch:
    """Processors fail while ``broken`` is set (shared by the worker threads)."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        self.broken.set()
        self.runs: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, job: Job) -> Any:
        with self.lock:
            self.runs[job.id] = self.runs.get(job.id, 0) + 1
        if job.data.get("fragile") and self.broken.is_set():
            raise RuntimeError(f"{job.name} broke")
        return {"name": job.name}


def chain(levels: int, queues: tuple[str, ...], policy: str = "failParentOnFailure") -> dict:
    """A flow ``levels`` deep (as in BullMQ issue 2336): each level one child, alternating
    queues; the deepest job is fragile; level 1 also has a sibling that succeeds."""
    node: dict[str, Any] = {"name": f"level{levels - 1}", "queueName": queues[(levels - 1) % 2],
                            "data": {"fragile": True}, "opts": {policy: True}}
    for level in range(levels - 2, -1, -1):
        children = [node]
        if level == 0:
            children.append({"name": "sibling", "queueName": queues[1], "data": {}})
        node = {"name": f"level{level}", "queueName": queues[level % 2], "data": {},
                "children": children}
        if level > 0:
            node["opts"] = {policy: True}
    return node


def without_ops(snap: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without our short-lived call-outcome keys."""
    return {k: v for k, v in snap.items() if ":" + OP_SEGMENT not in k}


def state(connection: Connection, prefix: str, node: JobNode) -> str:
    queue = Queue(node.job.queue.name, connection=connection, prefix=prefix)
    return str(Job.from_id(queue, node.job.id).get_state())  # type: ignore[union-attr]


def run_workers(connection: Connection, prefix: str, switch: Switch, until: Any) -> None:
    with Worker("a", switch, connection=connection, prefix=prefix, drain_delay=0.2,
                concurrency=2), \
         Worker("b", switch, connection=connection, prefix=prefix, drain_delay=0.2,
                concurrency=2):
        wait_for(until, timeout=30)


def test_a_five_level_failed_chain_is_retried_in_one_call_and_completes(
    flows, connection, raw, prefix, log_events
):
    switch = Switch()
    root = flows.add(chain(5, ("a", "b")))
    nodes = list(root.walk())
    sibling = root.children[1]
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    assert all(state(connection, prefix, n) == "failed" for n in nodes if n is not sibling)
    assert state(connection, prefix, sibling) == "completed"
    sibling_done = raw.hget(sibling.job.key, "finishedOn")
    runs_before = dict(switch.runs)

    log_events.clear()
    moved = root.job.retry_tree()

    chain_nodes = [n for n in nodes if n is not sibling]
    assert [m.key for m in moved] == [n.job.key for n in reversed(chain_nodes)]
    assert all(isinstance(m, RetriedJob) and m.from_state == "failed" for m in moved)
    assert [m.to_state for m in moved] == ["waiting"] + ["waiting-children"] * 4
    leaf = chain_nodes[-1].job
    assert raw.lrange(f"{prefix}:{leaf.queue.name}:wait", 0, -1) == [leaf.id]
    for parent, child in itertools.pairwise(chain_nodes):
        key = parent.job.key
        assert raw.zscore(f"{prefix}:{parent.job.queue.name}:waiting-children", parent.job.id)
        assert raw.smembers(key + ":dependencies") == {child.job.key}
        assert not raw.exists(key + ":unsuccessful")
        fields = raw.hgetall(key)
        assert not {"failedReason", "finishedOn", "processedOn", "defa"} & set(fields)
    # the completed sibling is left as it was
    assert raw.hget(sibling.job.key, "finishedOn") == sibling_done
    assert set(raw.hkeys(root.job.key + ":processed")) == {sibling.job.key}
    assert not raw.zcard(f"{prefix}:a:failed") and not raw.zcard(f"{prefix}:b:failed")
    retried = [e for e in log_events if e["event"] == "job.retried"]
    assert [(e["queue"], e["job_id"], e["from_state"], e["to_state"]) for e in retried] == [
        (m.queue_name, m.job_id, "failed", m.to_state) for m in moved]
    assert root.job.failed_reason is None

    switch.broken.clear()
    run_workers(connection, prefix, switch,
                lambda: state(connection, prefix, root) == "completed")
    assert all(state(connection, prefix, n) == "completed" for n in nodes)
    assert switch.runs[sibling.job.id] == runs_before[sibling.job.id] == 1
    values = root.job.get_children_values()
    assert set(values) == {sibling.job.key, root.children[0].job.key}


def test_a_parent_stuck_on_a_failed_child_without_policy(flows, connection, raw, prefix):
    switch = Switch()
    root = flows.add({"name": "top", "queueName": "a", "children": [
        {"name": "bad", "queueName": "b", "data": {"fragile": True}},
        {"name": "good", "queueName": "b"}]})
    bad, good = (n.job for n in root.children)
    run_workers(connection, prefix, switch, lambda: raw.zscore(f"{prefix}:b:failed", bad.id))
    wait_for(lambda: raw.zscore(f"{prefix}:b:completed", good.id))
    assert raw.zscore(f"{prefix}:a:waiting-children", root.job.id) is not None

    moved = root.job.retry_tree()

    assert [(m.job_id, m.to_state) for m in moved] == [(bad.id, "waiting")]
    assert raw.smembers(root.job.key + ":dependencies") == {bad.key}
    switch.broken.clear()
    run_workers(connection, prefix, switch,
                lambda: state(connection, prefix, root) == "completed")


def test_ignored_failures_of_a_failed_parent_are_retried_too(flows, connection, raw, prefix):
    switch = Switch()
    root = flows.add({"name": "top", "queueName": "a", "data": {"fragile": True}, "children": [
        {"name": "flaky", "queueName": "b", "data": {"fragile": True},
         "opts": {"ignoreDependencyOnFailure": True}},
        {"name": "fine", "queueName": "b", "opts": {"priority": 3}}]})
    flaky = root.children[0].job
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    assert root.job.get_ignored_children_failures() == {flaky.key: "flaky broke"}

    moved = root.job.retry_tree({"resetAttemptsMade": True})

    assert [(m.job_id, m.to_state) for m in moved] == [
        (flaky.id, "waiting"), (root.job.id, "waiting-children")]
    assert not raw.exists(root.job.key + ":failed")
    assert raw.hget(flaky.key, "atm") is None and raw.hget(root.job.key, "atm") is None
    switch.broken.clear()
    run_workers(connection, prefix, switch,
                lambda: state(connection, prefix, root) == "completed")
    assert set(root.job.get_children_values()) == {flaky.key, root.children[1].job.key}


def test_landing_rules_and_events(flows, connection, raw, prefix):
    root = flows.add({"name": "top", "queueName": "a", "data": {"fragile": True}, "children": [
        {"name": "urgent", "queueName": "a", "data": {"fragile": True},
         "opts": {"priority": 2, "ignoreDependencyOnFailure": True}},
        {"name": "last-in", "queueName": "a", "data": {"fragile": True},
         "opts": {"lifo": True, "ignoreDependencyOnFailure": True}}]})
    urgent, lifo = (n.job for n in root.children)
    switch = Switch()
    with Worker("a", switch, connection=connection, prefix=prefix, drain_delay=0.2):
        wait_for(lambda: state(connection, prefix, root) == "failed")
    raw.lpush(f"{prefix}:a:wait", "other")
    raw.delete(f"{prefix}:a:marker")
    before = len(events(raw, prefix, "a"))

    root.job.retry_tree()

    assert raw.zrange(f"{prefix}:a:prioritized", 0, -1) == [urgent.id]
    assert raw.lrange(f"{prefix}:a:wait", 0, -1) == ["other", lifo.id]
    assert raw.zrange(f"{prefix}:a:marker", 0, -1) == ["0"]
    new = events(raw, prefix, "a")[before:]
    assert sorted((e["event"], e["jobId"], e["prev"]) for e in new) == sorted([
        ("waiting", urgent.id, "failed"), ("waiting", lifo.id, "failed"),
        ("waiting-children", root.job.id, "failed")])


def test_a_failed_root_with_a_parent_becomes_its_dependency_again(flows, connection, raw,
                                                                  prefix):
    root = flows.add({"name": "top", "queueName": "a", "children": [
        {"name": "mid", "queueName": "b", "children": [
            {"name": "leaf", "queueName": "a", "data": {"fragile": True},
             "opts": {"failParentOnFailure": True}}]}]})
    mid = root.children[0]
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, mid) == "failed")
    assert raw.zscore(f"{prefix}:a:waiting-children", root.job.id) is not None

    moved = mid.job.retry_tree()

    assert [m.job_id for m in moved] == [mid.children[0].job.id, mid.job.id]
    assert raw.smembers(root.job.key + ":dependencies") == {mid.job.key}
    assert raw.zscore(f"{prefix}:a:waiting-children", root.job.id) is not None
    switch.broken.clear()
    run_workers(connection, prefix, switch,
                lambda: state(connection, prefix, root) == "completed")


def test_a_repeated_call_with_the_same_token_changes_nothing(flows, connection, raw, prefix):
    root = flows.add(chain(3, ("a", "b")))
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    token = root.job.queue.next_token()
    op = root.job.queue.keys.op(token)
    args = ("0", "0", 100, 60000, "")
    first = connection.run_script("retryJobTree", (root.job.key, op), args)
    after = snapshot(raw, prefix)
    again = connection.run_script("retryJobTree", (root.job.key, op), args)
    assert again[:2] == first[:2] and again[2] == 1
    assert snapshot(raw, prefix) == after


def test_nothing_failed_under_a_waiting_parent_is_a_no_op(flows, raw, prefix):
    root = flows.add({"name": "top", "queueName": "a", "children": [
        {"name": "c", "queueName": "b"}]})
    before = without_ops(snapshot(raw, prefix))
    assert root.job.retry_tree() == []
    assert without_ops(snapshot(raw, prefix)) == before


BAD_OPTIONS: dict[str, tuple[Any, dict[str, Any]]] = {
    "unknown-key": ({"resetAttempts": True}, {}),
    "not-a-dict": (["resetAttemptsMade"], {}),
    "flag-not-bool": ({"resetAttemptsMade": "yes"}, {}),
    "max-zero": (None, {"max_jobs": 0}),
    "max-huge": ({"maxJobs": 10**9}, {}),
    "max-bool": (None, {"max_jobs": True}),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_input_is_refused_before_anything_is_sent(flows, connection, raw, prefix, case):
    root = flows.add(chain(3, ("a", "b")))
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    before = snapshot(raw, prefix)
    opts, kwargs = BAD_OPTIONS[case]
    with pytest.raises(InvalidArgument):
        root.job.retry_tree(opts, **kwargs)
    assert snapshot(raw, prefix) == before


def test_refusals_leave_redis_unchanged(flows, connection, raw, prefix):
    root = flows.add(chain(4, ("a", "b")))
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    before = without_ops(snapshot(raw, prefix))

    def unchanged() -> bool:
        return without_ops(snapshot(raw, prefix)) == before

    with pytest.raises(FlowTooLarge) as too_large:
        root.job.retry_tree(max_jobs=3)
    assert too_large.value.max_jobs == 3 and unchanged()
    assert len(root.job.retry_tree(max_jobs=4)) == 4  # exactly the tree's size is fine
    before = without_ops(snapshot(raw, prefix))

    with pytest.raises(JobNotInState):
        root.children[1].job.retry_tree()  # the completed sibling
    assert unchanged()
    with Queue("a", connection=connection, prefix=prefix) as queue:
        ghost = Job(queue=queue, id="ghost")
        with pytest.raises(JobNotFound):
            ghost.retry_tree()
        with pytest.raises(JobNotFound):
            ghost.retryTree({"maxJobs": 5})
    assert unchanged()


def test_a_removed_child_recorded_as_failing_its_parent_refuses_the_retry(
    flows, connection, raw, prefix
):
    root = flows.add(chain(3, ("a", "b")))
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    leaf = root.children[0].children[0].job
    raw.delete(leaf.key)
    raw.zrem(f"{prefix}:{leaf.queue.name}:failed", leaf.id)
    before = without_ops(snapshot(raw, prefix))
    with pytest.raises(JobNotFound) as refused:
        root.job.retry_tree()
    assert refused.value.job_id == leaf.id
    assert without_ops(snapshot(raw, prefix)) == before


def test_pending_children_count_towards_max_jobs(flows, raw, prefix):
    root = flows.add({"name": "top", "queueName": "a", "children": [
        {"name": f"c{i}", "queueName": "b"} for i in range(5)]})
    before = without_ops(snapshot(raw, prefix))
    with pytest.raises(FlowTooLarge):
        root.job.retry_tree(max_jobs=5)  # the root and 5 children are 6 jobs to look at
    assert without_ops(snapshot(raw, prefix)) == before
    assert root.job.retry_tree(max_jobs=6) == []


def test_sixteen_threads_retrying_the_same_tree_move_each_job_once(flows, connection, raw,
                                                                   prefix):
    root = flows.add(chain(5, ("a", "b")))
    switch = Switch()
    run_workers(connection, prefix, switch, lambda: state(connection, prefix, root) == "failed")
    before = {q: len(events(raw, prefix, q)) for q in ("a", "b")}
    barrier = threading.Barrier(16)
    results: list[list[RetriedJob]] = []
    lock = threading.Lock()

    def retry() -> None:
        job = Job.from_id(root.job.queue, root.job.id)
        assert job is not None
        barrier.wait()
        moved = job.retry_tree()
        with lock:
            results.append(moved)

    threads = [threading.Thread(target=retry) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(moved) for moved in results) == [0] * 15 + [5]
    new = [e for q in ("a", "b") for e in events(raw, prefix, q)[before[q]:]]
    assert len(new) == 5
    leaf = root.children[0].children[0].children[0].children[0].job
    assert raw.lrange(f"{prefix}:{leaf.queue.name}:wait", 0, -1) == [leaf.id]
