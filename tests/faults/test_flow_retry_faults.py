"""retry_tree and remove_unprocessed_children under faults: a reply lost after the script ran
is not applied twice, a flushed script cache is invisible."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from helpers import events, wait_for
from proxy import ReplyDroppingProxy

from bullmq_sync import Connection, FlowProducer, Job, JobNode, Queue, Worker

pytestmark = pytest.mark.faults


def fragile(job: Job) -> Any:
    if job.data.get("fragile"):
        raise RuntimeError("broke")
    return 1


def failed_chain(url: str, prefix: str) -> JobNode:
    """root (a) <- mid (b) <- leaf (a), failParentOnFailure, all failed by a real worker."""
    with FlowProducer(connection=url, prefix=prefix) as flows:
        root = flows.add({"name": "root", "queueName": "a", "children": [
            {"name": "mid", "queueName": "b", "opts": {"failParentOnFailure": True},
             "children": [{"name": "leaf", "queueName": "a", "data": {"fragile": True},
                           "opts": {"failParentOnFailure": True}}]}]})
    raw = redis.Redis.from_url(url, decode_responses=True)
    with Worker("a", fragile, connection=url, prefix=prefix, drain_delay=0.2), \
         Worker("b", fragile, connection=url, prefix=prefix, drain_delay=0.2):
        wait_for(lambda: raw.zscore(f"{prefix}:a:failed", root.job.id) is not None)
    raw.close()
    return root


def test_retry_tree_reply_lost_is_not_applied_twice(local_redis, prefix, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    root = failed_chain(local_redis.url, prefix)
    leaf = root.children[0].children[0].job
    proxy = ReplyDroppingProxy(local_redis.port)
    with Connection(proxy.url) as conn:
        with Queue("a", connection=conn, prefix=prefix) as queue:
            job = Job.from_id(queue, root.job.id)  # warms the pool and preloads the scripts
            assert job is not None
            before = {q: len(events(raw, prefix, q)) for q in ("a", "b")}
            log_events.clear()
            proxy.drop_next_reply()
            moved = job.retry_tree()
    assert proxy.dropped == 1
    assert [m.to_state for m in moved] == ["waiting", "waiting-children", "waiting-children"]
    assert raw.lrange(f"{prefix}:a:wait", 0, -1) == [leaf.id]
    new = [e for q in ("a", "b") for e in events(raw, prefix, q)[before[q]:]]
    assert sorted(e["event"] for e in new) == ["waiting", "waiting-children", "waiting-children"]
    retried = [e for e in log_events if e["event"] == "job.retried"]
    assert len(retried) == 3 and all(e["replayed"] is True for e in retried)
    assert any(e["event"] == "redis.retry" for e in log_events)
    proxy.close()
    raw.close()


def test_remove_unprocessed_children_reply_lost_is_not_applied_twice(local_redis, prefix,
                                                                      log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    with FlowProducer(connection=local_redis.url, prefix=prefix) as flows:
        root = flows.add({"name": "root", "queueName": "a", "children": [
            {"name": "c1", "queueName": "b"}, {"name": "c2", "queueName": "b"}]})
    proxy = ReplyDroppingProxy(local_redis.port)
    with Connection(proxy.url) as conn:
        with Queue("a", connection=conn, prefix=prefix) as queue:
            job = Job.from_id(queue, root.job.id)
            assert job is not None
            log_events.clear()
            proxy.drop_next_reply()
            assert job.remove_unprocessed_children() == 2
    assert proxy.dropped == 1
    assert raw.lrange(f"{prefix}:a:wait", 0, -1) == [root.job.id]
    assert [e["event"] for e in events(raw, prefix, "a")].count("waiting") == 1
    assert [e["event"] for e in events(raw, prefix, "b")].count("removed") == 2
    removed = [e for e in log_events if e["event"] == "job.removed"]
    assert len(removed) == 2 and all(e["replayed"] is True for e in removed)
    proxy.close()
    raw.close()


def test_script_flush_before_retry_tree_is_invisible(local_redis, prefix, log_events):
    raw = redis.Redis(port=local_redis.port, decode_responses=True)
    root = failed_chain(local_redis.url, prefix)
    with Queue("a", connection=local_redis.url, prefix=prefix) as queue:
        job = Job.from_id(queue, root.job.id)  # the pool preloads every script here
        raw.script_flush()
        assert job is not None and len(job.retry_tree()) == 3
    assert "retryJobTree" in [e["script"] for e in log_events if e["event"] == "script.reloaded"]
    raw.close()
