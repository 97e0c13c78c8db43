"""What removing a flow's last pending child does to its parent, as BullMQ 6.7 does it.

A removal is not a completion: the parent leaves waiting-children for the front of its wait
list whatever its delay or priority (BullMQ's removeParentDependencyKey). drain and clean are
"hard": a parent in the same queue is deleted with its child, one in another queue is moved to
its wait list without an event.
"""

from __future__ import annotations

from helpers import events

from bullmq_sync import FlowProducer, Queue


def make_flow(connection, prefix, parent_queue, parent_opts=None):
    with FlowProducer(connection=connection, prefix=prefix) as flows:
        return flows.add({
            "name": "parent", "queueName": parent_queue, "opts": {"jobId": "p", **(parent_opts or {})},
            "children": [{"name": "child", "queueName": "kids", "opts": {"jobId": "c"}}],
        })




def test_removing_the_last_child_sends_a_delayed_prioritized_parent_to_the_front_of_wait(connection, raw, prefix):
    make_flow(connection, prefix, "parents", {"priority": 5, "delay": 60_000})
    raw.lpush(f"{prefix}:parents:wait", "older")
    with Queue("kids", connection=connection, prefix=prefix) as kids:
        assert kids.get_job("c").remove()
    assert raw.lrange(f"{prefix}:parents:wait", 0, -1) == ["older", "p"]
    assert raw.zcard(f"{prefix}:parents:prioritized") == 0 and raw.zcard(f"{prefix}:parents:delayed") == 0
    assert events(raw, prefix, "parents")[-1] == {"event": "waiting", "jobId": "p", "prev": "waiting-children"}


def test_drain_deletes_a_parent_of_the_same_queue(connection, raw, prefix):
    make_flow(connection, prefix, "kids")
    before = len(events(raw, prefix, "kids"))
    with Queue("kids", connection=connection, prefix=prefix) as kids:
        assert kids.drain() == 1
    assert not raw.exists(f"{prefix}:kids:p") and not raw.exists(f"{prefix}:kids:c")
    assert raw.zcard(f"{prefix}:kids:waiting-children") == 0
    assert len(events(raw, prefix, "kids")) == before  # drain emits nothing


def test_drain_moves_a_parent_of_another_queue_to_its_wait_without_an_event(connection, raw, prefix):
    make_flow(connection, prefix, "parents", {"priority": 3})
    before = events(raw, prefix, "parents")
    with Queue("kids", connection=connection, prefix=prefix) as kids:
        kids.drain()
    assert raw.lrange(f"{prefix}:parents:wait", 0, -1) == ["p"]
    assert raw.exists(f"{prefix}:parents:p")
    assert events(raw, prefix, "parents") == before


def test_clean_is_hard_too(connection, raw, prefix):
    make_flow(connection, prefix, "kids")
    with Queue("kids", connection=connection, prefix=prefix) as kids:
        assert kids.clean(0, 0, "wait") == ["c"]
    assert not raw.exists(f"{prefix}:kids:p")
