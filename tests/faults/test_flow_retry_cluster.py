"""retry_tree on a real 3-primary Redis Cluster: a tree under one hash tag is retried; a tree
reaching a job under another tag is refused before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cluster_servers import LocalCluster, require_binaries
from redis.cluster import RedisCluster

from bullmq_sync import (
    ConfigurationError,
    Connection,
    FlowProducer,
    FlowSpansSlots,
    Job,
    JobNode,
    Queue,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    require_binaries()
    with LocalCluster(primaries=3) as running:
        yield running


def fail_by_hand(raw: RedisCluster, tag: str, root: JobNode) -> str:
    """Record the first child as failed with failParentOnFailure and fail the root."""
    child = root.children[0].job
    root_key = f"{tag}:top:{root.job.id}"
    raw.lrem(f"{tag}:kids:wait", 0, child.id)
    raw.zadd(f"{tag}:kids:failed", {child.id: 1})
    raw.hset(child.key, mapping={"failedReason": "boom", "finishedOn": 1})
    raw.srem(root_key + ":dependencies", child.key)
    raw.zadd(root_key + ":unsuccessful", {child.key: 1})
    raw.zrem(f"{tag}:top:waiting-children", root.job.id)
    raw.zadd(f"{tag}:top:failed", {root.job.id: 1})
    return root_key


def test_retry_tree_within_one_hash_tag(cluster: LocalCluster) -> None:
    tag = "{app" + uuid.uuid4().hex[:6] + "}"
    raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    with Connection(cluster.url) as conn, FlowProducer(connection=conn, prefix=tag) as flows:
        root = flows.add({"name": "p", "queueName": "top", "children": [
            {"name": "c", "queueName": "kids", "opts": {"failParentOnFailure": True}}]})
        root_key = fail_by_hand(raw, tag, root)
        with Queue("top", connection=conn, prefix=tag) as queue:
            job = Job.from_id(queue, root.job.id)
            assert job is not None
            moved = job.retry_tree()
    assert [m.to_state for m in moved] == ["waiting", "waiting-children"]
    assert raw.smembers(root_key + ":dependencies") == {root.children[0].job.key}
    assert raw.lrange(f"{tag}:kids:wait", 0, -1) == [root.children[0].job.id]
    raw.close()


def test_a_child_under_another_tag_is_refused_and_nothing_changes(cluster: LocalCluster) -> None:
    tag = "{app" + uuid.uuid4().hex[:6] + "}"
    raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    with Connection(cluster.url) as conn, FlowProducer(connection=conn, prefix=tag) as flows:
        root = flows.add({"name": "p", "queueName": "top", "children": [
            {"name": "c", "queueName": "kids", "opts": {"failParentOnFailure": True}}]})
        root_key = fail_by_hand(raw, tag, root)
        stranger = "{elsewhere" + uuid.uuid4().hex[:6] + "}:kids:x"
        raw.zadd(root_key + ":unsuccessful", {stranger: 2})
        keys = [root_key, root_key + ":unsuccessful", root_key + ":dependencies",
                root.children[0].job.key, f"{tag}:top:failed", f"{tag}:kids:failed",
                f"{tag}:kids:wait", f"{tag}:top:events"]
        before = {key: raw.dump(key) for key in keys}
        with Queue("top", connection=conn, prefix=tag) as queue:
            job = Job.from_id(queue, root.job.id)
            assert job is not None
            with pytest.raises(FlowSpansSlots) as refused:
                job.retry_tree()
    assert isinstance(refused.value, ConfigurationError)
    assert refused.value.job_key == stranger
    assert {key: raw.dump(key) for key in keys} == before
    raw.close()


def test_a_failed_root_whose_parent_has_another_tag_is_refused(cluster: LocalCluster) -> None:
    tag = "{app" + uuid.uuid4().hex[:6] + "}"
    raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    with Connection(cluster.url) as conn, FlowProducer(connection=conn, prefix=tag) as flows:
        root = flows.add({"name": "p", "queueName": "top", "children": [
            {"name": "c", "queueName": "kids", "opts": {"failParentOnFailure": True}}]})
        root_key = fail_by_hand(raw, tag, root)
        raw.hset(root_key, "parentKey", "{other" + uuid.uuid4().hex[:6] + "}:top:1")
        before = {key: raw.dump(key) for key in (root_key, f"{tag}:top:failed")}
        with Queue("top", connection=conn, prefix=tag) as queue:
            job = Job.from_id(queue, root.job.id)
            assert job is not None
            with pytest.raises(FlowSpansSlots):
                job.retry_tree()
    assert {key: raw.dump(key) for key in before} == before
    raw.close()


def test_remove_unprocessed_children_refuses_a_child_under_another_tag(
    cluster: LocalCluster,
) -> None:
    """A pending child in another slot is found by a read-only walk: nothing is removed."""
    tag = "{app" + uuid.uuid4().hex[:6] + "}"
    raw = RedisCluster.from_url(cluster.seed_url, decode_responses=True)
    with Connection(cluster.url) as conn, FlowProducer(connection=conn, prefix=tag) as flows:
        root = flows.add({"name": "p", "queueName": "top", "children": [
            {"name": "c", "queueName": "kids"}, {"name": "d", "queueName": "kids"}]})
        root_key = f"{tag}:top:{root.job.id}"
        stranger = "{elsewhere" + uuid.uuid4().hex[:6] + "}:kids:x"
        raw.sadd(root_key + ":dependencies", stranger)
        keys = [root_key, root_key + ":dependencies", f"{tag}:kids:wait",
                *(child.job.key for child in root.children), f"{tag}:kids:events"]
        before = {key: raw.dump(key) for key in keys}
        with Queue("top", connection=conn, prefix=tag) as queue:
            job = Job.from_id(queue, root.job.id)
            assert job is not None
            with pytest.raises(FlowSpansSlots) as refused:
                job.remove_unprocessed_children()
            assert refused.value.job_key == stranger
            assert {key: raw.dump(key) for key in keys} == before
            raw.srem(root_key + ":dependencies", stranger)  # within the tag it works
            assert job.remove_unprocessed_children() == 2
    assert raw.llen(f"{tag}:kids:wait") == 0
    raw.close()
