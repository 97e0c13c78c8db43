"""Deduplication against real Node BullMQ 6.7.0.

The strongest check: the same sequence of adds (every mode) is played by Node BullMQ on one
queue and by bullmq-sync on another, with the same timestamps, and the two queues' Redis
contents must be identical (stored opts compared parsed, TTLs compared as "has one").
Then the two clients share queues: each deduplicates against the other's jobs, and each
one's worker finishes the other's dedup owners.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis
from nodebullmq import NodeBullMQ

from bullmq_sync import Job, Queue, Worker

pytestmark = pytest.mark.interop

T0 = 1_700_000_000_000


def normalized(raw: redis.Redis, prefix: str, queue: str) -> dict[str, Any]:
    """Every key of one queue (our op keys and meta's version aside), opts parsed."""
    base = f"{prefix}:{queue}:"
    state: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(match=base + "*", count=1000)):
        name = key[len(base):]
        if name.startswith("bqs:op:"):
            continue
        kind = raw.type(key)
        value: Any
        if kind == "hash":
            value = {
                f: (json.loads(v) if f == "opts" else v)
                for f, v in raw.hgetall(key).items()
                if not (name == "meta" and f == "version")
            }
        elif kind == "list":
            value = raw.lrange(key, 0, -1)
        elif kind == "zset":
            value = raw.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [fields for _, fields in raw.xrange(key)]
        elif kind == "string":
            value = (raw.get(key), raw.pttl(key) > 0)
        else:
            value = kind
        state[name] = (kind, value)
    return state


def make_active(raw: redis.Redis, prefix: str, queue: str, job_id: str) -> None:
    """Put a waiting job in active, as a worker's fetch would (no lock: nobody finishes it)."""
    raw.lrem(f"{prefix}:{queue}:wait", 0, job_id)
    raw.lpush(f"{prefix}:{queue}:active", job_id)


# Each step: (name, data, opts). Timestamps are given so both sides store the same numbers.
SEQUENCE: list[tuple[str, dict, dict]] = [
    ("paint", {"color": "white"}, {"deduplication": {"id": "simple"}}),
    ("paint", {"color": "black"}, {"deduplication": {"id": "simple"}}),
    ("t", {"n": 1}, {"deduplication": {"id": "throttle", "ttl": 60000}}),
    ("t", {"n": 2}, {"deduplication": {"id": "throttle", "ttl": 60000}}),
    ("d", {"q": "h"}, {"deduplication": {"id": "deb", "ttl": 60000, "extend": True,
                                         "replace": True}, "delay": 5000}),
    ("d", {"q": "he"}, {"deduplication": {"id": "deb", "ttl": 60000, "extend": True,
                                          "replace": True}, "delay": 5000}),
    ("r", {}, {"deduplication": {"id": "keep", "ttl": 60000, "replace": True},
               "delay": 3000}),
    ("r", {}, {"deduplication": {"id": "keep", "ttl": 60000, "replace": True},
               "delay": 3000}),
    ("w", {}, {"deduplication": {"id": "waiting-owner", "replace": True}}),
    ("w", {"late": 1}, {"deduplication": {"id": "waiting-owner", "replace": True}}),
    ("s", {"v": "a"}, {"deduplication": {"id": "resched", "reschedule": True}, "delay": 60000}),
    ("s", {"v": "b"}, {"deduplication": {"id": "resched", "reschedule": True}, "delay": 5000}),
    ("s", {"v": "c"}, {"deduplication": {"id": "resched", "reschedule": True,
                                         "extend": True, "ttl": 1000}, "priority": 3}),
    ("p", {}, {"deduplication": {"id": "prio"}, "priority": 7, "jobId": "custom-owner"}),
    ("p", {}, {"deduplication": {"id": "prio"}, "jobId": "custom-late"}),
    ("stale", {}, {"deduplication": {"id": "stale", "ttl": 2000}}),
    ("plain", {}, {"lifo": True}),
]

KEEP_LAST = {"deduplication": {"id": "kl", "keepLastIfActive": True}}


def play(side: str, node: NodeBullMQ, queue: Queue | None, raw: redis.Redis, prefix: str,
         name: str) -> list[str]:
    raw.set(f"{prefix}:{name}:de:stale", "ghost")  # a stale key left by an outage
    ids = []

    def add(job_name: str, data: dict, opts: dict) -> str:
        if side == "node":
            return str(node.call("add", queue=name, prefix=prefix, name=job_name, data=data,
                                 opts=opts)["id"])
        assert queue is not None
        return queue.add(job_name, data, opts).id

    for step, (job_name, data, opts) in enumerate(SEQUENCE):
        ids.append(add(job_name, data, dict(opts, timestamp=T0 + step)))
    owner = add("kl", {"v": 0}, dict(KEEP_LAST, timestamp=T0 + 100))
    make_active(raw, prefix, name, owner)
    for n in (1, 2):
        ids.append(add("kl", {"v": n}, dict(KEEP_LAST, timestamp=T0 + 100 + n)))
    return ids


def test_same_redis_state_as_node_for_every_mode(node6, redis_url, raw, prefix):
    node_ids = play("node", node6, None, raw, prefix, "by-node")
    with Queue("by-us", connection=redis_url, prefix=prefix) as queue:
        our_ids = play("us", node6, queue, raw, prefix, "by-us")
    assert our_ids == node_ids
    ours, theirs = normalized(raw, prefix, "by-us"), normalized(raw, prefix, "by-node")
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key] == theirs[key], key
    # the sequence really exercised every branch
    kinds = [e["event"] for e in theirs["events"][1]]
    assert kinds.count("deduplicated") == 9 and kinds.count("removed") == 2
    assert theirs["dn:kl"][1]["jid"] == theirs["id"][1][0]  # the last add's own id
    assert node_ids[-1] == node_ids[-2] != theirs["dn:kl"][1]["jid"]  # the add answered the owner
    assert theirs["de:stale"][1] == (node_ids[15], True)  # the stale key was taken over
    assert {"de:simple", "de:throttle", "de:deb", "de:keep", "de:resched", "de:prio"} <= set(theirs)


def test_node_and_we_deduplicate_against_each_other(node6, redis_url, raw, prefix):
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        ours = queue.add("a", {"by": "us"}, deduplication={"id": "x", "ttl": 60000})
        theirs = node6.call("add", queue="q", prefix=prefix, name="a", data={"by": "node"},
                            opts={"deduplication": {"id": "x", "ttl": 60000}})["id"]
        assert theirs == ours.id
        node_owner = node6.call("add", queue="q", prefix=prefix, name="b", data={"by": "node"},
                                opts={"deduplication": {"id": "y"}})["id"]
        again = queue.add("b", {"by": "us"}, {"deduplication": {"id": "y"}})
        assert again.id == node_owner and again.data == {"by": "node"}
        assert again.deduplicated_job_id is not None
        assert queue.get_deduplication_job_id("y") == node_owner
        stream = [f for _, f in raw.xrange(f"{prefix}:q:events")]
        dedup_events = [f for f in stream if f["event"] == "deduplicated"]
        assert [(e["jobId"], e["deduplicationId"]) for e in dedup_events] == [
            (ours.id, "x"), (node_owner, "y")]
        view = node6.call("getJob", queue="q", prefix=prefix, jobId=ours.id)
        assert view["json"]["deduplicationId"] == "x"
        assert view["json"]["opts"]["deduplication"] == {"id": "x", "ttl": 60000}


def test_node_worker_finishing_our_owner_frees_the_key(node6, redis_url, raw, prefix):
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        owner = queue.add("w", {}, deduplication={"id": "free"})
        assert queue.get_deduplication_job_id("free") == owner.id
        out = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
        assert [o["event"] for o in out] == ["completed"]
        assert queue.get_deduplication_job_id("free") is None
        assert queue.add("w", {}, deduplication={"id": "free"}).deduplicated_job_id is None


def test_node_worker_requeues_what_we_parked(node6, redis_url, raw, prefix):
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        owner = queue.add("w", {"__sleepMs": 1500}, {"deduplication": {
            "id": "kl", "keepLastIfActive": True}})
        done: list[Any] = []
        runner = threading.Thread(target=lambda: done.append(node6.call(
            "process", queue="q", prefix=prefix, count=2, timeoutMs=15000)))
        runner.start()
        deadline = time.monotonic() + 10
        while raw.lrange(f"{prefix}:q:active", 0, -1) != [owner.id]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        parked = queue.add("w", {"v": "last"}, {"deduplication": {
            "id": "kl", "keepLastIfActive": True}})
        assert parked.id == owner.id and parked.deduplicated_job_id is not None
        runner.join(20)
        [outcomes] = done
        assert [(o["event"], o["jobId"]) for o in outcomes] == [
            ("completed", owner.id), ("completed", parked.deduplicated_job_id)]
        assert outcomes[1]["returnvalue"] == {"ok": True, "id": parked.deduplicated_job_id}
        assert not raw.exists(f"{prefix}:q:dn:kl") and not raw.exists(f"{prefix}:q:de:kl")


def test_our_worker_requeues_what_node_parked(node6, redis_url, raw, prefix):
    release = threading.Event()
    seen: list[tuple[str, Any]] = []

    def work(job: Job) -> Any:
        seen.append((job.id, job.data))
        if len(seen) == 1:
            assert release.wait(10)
        return "ok"

    opts = {"deduplication": {"id": "kl", "keepLastIfActive": True}}
    owner = node6.call("add", queue="q", prefix=prefix, name="w", data={"v": 0}, opts=opts)["id"]
    with Worker("q", work, connection=redis_url, prefix=prefix, drain_delay=1):
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        again = node6.call("add", queue="q", prefix=prefix, name="w", data={"v": 1}, opts=opts)
        assert again["id"] == owner
        jid = raw.hget(f"{prefix}:q:dn:kl", "jid")
        release.set()
        deadline = time.monotonic() + 10
        while raw.zcard(f"{prefix}:q:completed") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert seen == [(owner, {"v": 0}), (jid, {"v": 1})]
    view = node6.call("getJob", queue="q", prefix=prefix, jobId=jid)
    assert view["state"] == "completed" and view["json"]["deduplicationId"] == "kl"
    assert not raw.exists(f"{prefix}:q:de:kl")
