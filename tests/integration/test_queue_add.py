"""Queue.add / add_bulk: BullMQ 6.7's stored encoding, exactly, and refusals that write nothing."""

from __future__ import annotations

import json
import math

import pytest
from helpers import events
from queue_helpers import snapshot

from bullmq_sync import InvalidArgument, Job, ParentJobNotFound, Queue


def test_standard_add_stores_bullmq_fields_and_events(queue, raw, prefix):
    job = queue.add("email", {"to": "a@b.c", "ü": 1})
    assert isinstance(job, Job) and job.id == "1"
    stored = raw.hgetall(f"{prefix}:q:1")
    assert set(stored) == {"name", "data", "opts", "timestamp", "delay", "priority"}
    assert stored["name"] == "email"
    assert stored["data"] == '{"to":"a@b.c","ü":1}'
    assert json.loads(stored["opts"]) == {"attempts": 0}
    assert stored["delay"] == "0" and stored["priority"] == "0"
    assert int(stored["timestamp"]) == job.timestamp
    assert raw.get(f"{prefix}:q:id") == "1"
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert raw.zrange(f"{prefix}:q:marker", 0, -1, withscores=True) == [("0", 0.0)]
    assert events(raw, prefix) == [
        {"event": "added", "jobId": "1", "name": "email"},
        {"event": "waiting", "jobId": "1"},
    ]
    assert raw.hget(f"{prefix}:q:meta", "opts.maxLenEvents") == "10000"


def test_fifo_goes_to_head_and_lifo_to_tail(queue, raw, prefix):
    queue.add("a")
    queue.add("b")
    queue.add("c", lifo=True)
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["2", "1", "3"]


def test_options_dict_and_keywords_and_defaults_merge(redis_url, connection, raw, prefix):
    queue = Queue("q", {"prefix": prefix, "defaultJobOptions": {"attempts": 5, "removeOnFail": 10}},
                  connection=connection)
    queue.add("x", {}, {"attempts": 3, "backoff": {"type": "exponential", "delay": 1000},
                        "removeOnComplete": True}, remove_on_fail={"age": 60, "count": 5})
    opts = json.loads(raw.hget(f"{prefix}:q:1", "opts"))
    assert opts == {"attempts": 3, "backoff": {"type": "exponential", "delay": 1000},
                    "removeOnComplete": True, "removeOnFail": {"age": 60, "count": 5}}
    queue.add("y", backoff=250, keep_logs=3)
    opts = json.loads(raw.hget(f"{prefix}:q:2", "opts"))
    assert opts == {"attempts": 5, "removeOnFail": 10, "backoff": {"type": "fixed", "delay": 250},
                    "kl": 3}
    kw = Queue("q", prefix=prefix, connection=connection, default_job_options={"lifo": True})
    kw.add("z")
    assert raw.lindex(f"{prefix}:q:wait", -1) == "3"


def test_delayed_add_scores_with_the_4096_sequence_rule(queue, raw, prefix):
    t = 1_700_000_000_000
    for _ in range(3):
        queue.add("d", delay=5000, timestamp=t)
    queue.add("e", delay=4000, timestamp=t)
    scores = dict(raw.zrange(f"{prefix}:q:delayed", 0, -1, withscores=True))
    due = t + 5000
    assert scores == {"1": due * 4096, "2": due * 4096 + 1, "3": due * 4096 + 2,
                      "4": (t + 4000) * 4096}
    stored = raw.hgetall(f"{prefix}:q:1")
    assert stored["delay"] == "5000" and stored["timestamp"] == str(t)
    assert json.loads(stored["opts"]) == {"attempts": 0, "delay": 5000, "timestamp": t}
    assert raw.zscore(f"{prefix}:q:marker", "1") == t + 4000
    assert raw.zscore(f"{prefix}:q:marker", "0") is None
    assert raw.llen(f"{prefix}:q:wait") == 0
    assert events(raw, prefix)[:2] == [
        {"event": "added", "jobId": "1", "name": "d"},
        {"event": "delayed", "jobId": "1", "delay": str(due)},
    ]


def test_sequence_saturates_at_4095(queue, raw, prefix):
    t = 1_700_000_000_000
    raw.zadd(f"{prefix}:q:delayed", {"x": (t + 1) * 4096 + 4095})
    queue.add("d", delay=1, timestamp=t)
    assert raw.zscore(f"{prefix}:q:delayed", "1") == (t + 1) * 4096 + 4095


def test_prioritized_add_uses_the_counter(queue, raw, prefix):
    queue.add("p", priority=7)
    queue.add("p", priority=1, lifo=True)
    assert raw.get(f"{prefix}:q:pc") == "2"
    assert dict(raw.zrange(f"{prefix}:q:prioritized", 0, -1, withscores=True)) == {
        "1": 7 * 2**32 + 1, "2": 1 * 2**32 + 2}
    assert raw.hget(f"{prefix}:q:1", "priority") == "7"
    assert raw.zscore(f"{prefix}:q:marker", "0") == 0
    assert events(raw, prefix)[1] == {"event": "waiting", "jobId": "1"}


def test_paused_queue_still_gets_wait_but_no_marker(queue, raw, prefix):
    raw.hset(f"{prefix}:q:meta", "paused", "1")
    queue.add("a")
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert not raw.exists(f"{prefix}:q:marker")
    assert not raw.exists(f"{prefix}:q:paused")


def test_custom_id_and_duplicate(queue, raw, prefix):
    job = queue.add("a", {"v": 1}, job_id="order-1")
    assert job.id == "order-1"
    before = raw.hgetall(f"{prefix}:q:order-1")
    again = queue.add("other", {"v": 2}, job_id="order-1")
    assert again.id == "order-1"
    assert raw.hgetall(f"{prefix}:q:order-1") == before
    assert raw.get(f"{prefix}:q:id") == "2"
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["order-1"]
    assert events(raw, prefix)[-1] == {"event": "duplicated", "jobId": "order-1"}
    assert json.loads(before["opts"])["jobId"] == "order-1"


def test_child_of_a_parent(queue, raw, prefix, connection):
    parents = Queue("p", prefix=prefix, connection=connection)
    parent = parents.add("parent")
    child = queue.add("child", parent={"id": parent.id, "queue": f"{prefix}:p"},
                      fail_parent_on_failure=True)
    stored = raw.hgetall(f"{prefix}:q:{child.id}")
    assert stored["parentKey"] == f"{prefix}:p:1"
    assert json.loads(stored["parent"]) == {"id": "1", "queueKey": f"{prefix}:p", "fpof": True}
    assert json.loads(stored["opts"])["fpof"] is True
    assert raw.smembers(f"{prefix}:p:1:dependencies") == {f"{prefix}:q:1"}
    other = queue.add("child2", parent=parent)
    assert raw.scard(f"{prefix}:p:1:dependencies") == 2 and other.parent_key == f"{prefix}:p:1"


def test_missing_parent_is_minus_5_and_writes_nothing(queue, raw, prefix):
    queue.add("a")
    before = snapshot(raw, prefix)
    with pytest.raises(ParentJobNotFound) as info:
        queue.add("c", parent={"id": "nope", "queue": f"{prefix}:p"})
    assert info.value.code == -5 and f"{prefix}:p:nope" in str(info.value)
    assert snapshot(raw, prefix) == before


def test_add_bulk_is_one_call_and_keeps_order(queue, raw, prefix, monkeypatch):
    calls = []
    original = queue.connection.run_script

    def spy(name, keys, args):
        calls.append(name)
        return original(name, keys, args)

    monkeypatch.setattr(queue.connection, "run_script", spy)
    jobs = queue.add_bulk([
        {"name": "a", "data": {"i": 1}},
        ("b", {"i": 2}, {"priority": 3}),
        {"name": "c", "opts": {"delay": 100, "jobId": "cc"}},
        ("d",),
    ])
    assert calls == ["addJobs"]
    assert [j.id for j in jobs] == ["1", "2", "cc", "4"]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["4", "1"]
    assert raw.zrange(f"{prefix}:q:prioritized", 0, -1) == ["2"]
    assert raw.zrange(f"{prefix}:q:delayed", 0, -1) == ["cc"]


def test_add_bulk_refused_job_writes_nothing(queue, raw, prefix):
    queue.add("seed")
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        queue.add_bulk([{"name": "ok"}, {"name": "bad", "opts": {"priority": -1}}])
    with pytest.raises(ParentJobNotFound):
        queue.add_bulk([{"name": "ok"}, {"name": "c", "opts": {"parent": {"id": "x", "queue": f"{prefix}:p"}}}])
    assert snapshot(raw, prefix) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delay": -1},
        {"priority": -1},
        {"priority": 2**21},
        {"priority": 1.5},
        {"attempts": 0},
        {"backoff": {"type": "", "delay": 5}},
        {"backoff": {"type": 7, "delay": 5}},
        {"telemetry": {"metadata": 5}},
        {"telemetry": {"tracer": "x"}},
        {"opts": {"repeat": {"every": 1000}}},
        {"backoff": {"type": "fixed", "jitter": 2}},
        {"job_id": "123"},
        {"job_id": 42},
        {"job_id": "a:b"},
        {"job_id": ""},
        {"job_id": "x" * 1025},
        {"job_id": "0"},
        {"remove_on_complete": -2},
        {"remove_on_complete": {"weeks": 1}},
        {"data": {"f": object()}},
        {"data": {"n": math.nan}},
        {"data": b"bytes"},
        {"fail_parent_on_failure": True, "remove_dependency_on_failure": True},
        {"size_limit": 3, "data": {"big": "xxxx"}},
        {"opts": {"nonsense": 1}},
        {"opts": "not a dict"},
        {"parent": {"id": "1"}},
    ],
)
def test_bad_input_raises_and_leaves_redis_unchanged(queue, raw, prefix, kwargs):
    queue.add("seed")
    before = snapshot(raw, prefix)
    kwargs = dict(kwargs)
    data = kwargs.pop("data", {"ok": True})
    opts = kwargs.pop("opts", None)
    with pytest.raises(InvalidArgument):
        queue.add("job", data, opts, **kwargs)
    assert snapshot(raw, prefix) == before


def test_three_part_legacy_ids_are_accepted(queue, raw, prefix):
    assert queue.add("r", job_id="repeat:x:1").id == "repeat:x:1"
    assert queue.add("r", job_id="007").id == "007"


def test_events_stream_cap_uses_existing_meta(queue, raw, prefix):
    raw.hset(f"{prefix}:q:meta", "opts.maxLenEvents", "5")
    for _ in range(400):
        queue.add("a")
    assert raw.hget(f"{prefix}:q:meta", "opts.maxLenEvents") == "5"
    assert raw.xlen(f"{prefix}:q:events") < 800
