"""Job deduplication (BullMQ 6.7's ``deduplication`` option): exact Redis state and events.

Modes: simple, throttle (``ttl``), debounce (``extend`` + ``replace`` [+ ``delay``]), 6.7's
``reschedule``, stale TTL-less key recovery, ``keepLastIfActive`` with our Worker; finish and
removal release the key; bad input writes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from helpers import wait_for
from helpers import events
from queue_helpers import snapshot

from bullmq_sync import InvalidArgument, Job, Queue, Worker


def de(raw: Any, prefix: str, dedup_id: str) -> tuple[str | None, int]:
    """(owner id, PTTL) of a dedup key."""
    key = f"{prefix}:q:de:{dedup_id}"
    return raw.get(key), raw.pttl(key)


def stored_opts(raw: Any, prefix: str, job_id: str) -> dict[str, Any]:
    return json.loads(raw.hget(f"{prefix}:q:{job_id}", "opts"))




# -- simple mode ---------------------------------------------------------------------------


def test_simple_mode_returns_the_existing_job(queue: Queue, raw: Any, prefix: str) -> None:
    # BullMQ's docs example, with `await` removed
    first = queue.add("paint", {"color": "white"}, {"deduplication": {"id": "custom-dedup-id"}})
    again = queue.add("paint", {"color": "black"}, {"deduplication": {"id": "custom-dedup-id"}})

    assert first.id == "1" and first.deduplicated_job_id is None
    assert first.deduplication_id == "custom-dedup-id"
    assert again.id == "1" and again.deduplicated_job_id == "2"
    assert again.data == {"color": "white"} and again.deduplication_id == "custom-dedup-id"
    assert de(raw, prefix, "custom-dedup-id") == ("1", -1)
    assert raw.get(f"{prefix}:q:id") == "2"  # the counter moved for the refused add too
    assert not raw.exists(f"{prefix}:q:2")
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["1"]
    assert raw.hget(f"{prefix}:q:1", "deid") == "custom-dedup-id"
    assert stored_opts(raw, prefix, "1")["de"] == {"id": "custom-dedup-id"}
    assert events(raw, prefix) == [
        {"event": "added", "jobId": "1", "name": "paint"},
        {"event": "waiting", "jobId": "1"},
        {"event": "deduplicated", "jobId": "1", "deduplicationId": "custom-dedup-id",
         "deduplicatedJobId": "2"},
    ]


def test_refresh_keeps_what_the_deduplicated_add_answered(queue: Queue, raw: Any, prefix: str):
    queue.add("paint", {"color": "white"}, {"deduplication": {"id": "d"}})
    again = queue.add("paint", {"color": "black"}, {"deduplication": {"id": "d"}})
    raw.hset(f"{prefix}:q:1", "data", '{"color": "grey"}')
    assert again.refresh() is True
    assert again.data == {"color": "grey"} and again.deduplicated_job_id == "2"


def test_keyword_form_and_custom_ids(queue: Queue, raw: Any, prefix: str) -> None:
    owner = queue.add("a", {"n": 1}, job_id="mine", deduplication={"id": "d"})
    again = queue.add("a", {"n": 2}, job_id="other", deduplication={"id": "d"})
    assert (owner.id, again.id, again.deduplicated_job_id) == ("mine", "mine", "other")
    assert not raw.exists(f"{prefix}:q:other")
    # an existing custom id wins over deduplication (BullMQ checks it first)
    dup = queue.add("a", {"n": 3}, job_id="mine", deduplication={"id": "d"})
    assert dup.id == "mine" and dup.deduplicated_job_id is None
    assert events(raw, prefix)[-1] == {"event": "duplicated", "jobId": "mine"}


def test_bulk_adds_deduplicate_within_one_call(queue: Queue, raw: Any, prefix: str) -> None:
    jobs = queue.add_bulk([
        {"name": "a", "data": {"i": 1}, "opts": {"deduplication": {"id": "d"}}},
        {"name": "b", "data": {"i": 2}, "opts": {"deduplication": {"id": "d"}}},
        {"name": "c", "data": {"i": 3}},
    ])
    assert [(j.id, j.deduplicated_job_id) for j in jobs] == [("1", None), ("1", "2"), ("3", None)]
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["3", "1"]


def test_a_replayed_call_answers_the_same(queue: Queue, raw: Any, prefix: str, monkeypatch) -> None:
    queue.add("a", deduplication={"id": "d"})
    monkeypatch.setattr(queue, "next_token", lambda: "fixed-token")
    once = queue.add("b", deduplication={"id": "d"})
    before = snapshot(raw, prefix)
    twice = queue.add("b", deduplication={"id": "d"})
    assert snapshot(raw, prefix) == before
    assert (once.id, once.deduplicated_job_id) == ("1", "2")
    assert (twice.id, twice.deduplicated_job_id) == ("1", "2")


# -- throttle (ttl) and extend ---------------------------------------------------------------


def test_throttle_ttl_window(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "t", "ttl": 5000}}
    first = queue.add("w", {"n": 1}, opts)
    owner, pttl = de(raw, prefix, "t")
    assert owner == first.id and 4000 < pttl <= 5000
    raw.pexpire(f"{prefix}:q:de:t", 2000)
    second = queue.add("w", {"n": 2}, opts)
    assert second.id == first.id and second.deduplicated_job_id == "2"
    assert 0 < de(raw, prefix, "t")[1] <= 2000  # not extended
    raw.pexpire(f"{prefix}:q:de:t", 1)
    time.sleep(0.01)
    third = queue.add("w", {"n": 3}, opts)
    assert third.id == "3" and third.deduplicated_job_id is None
    owner, pttl = de(raw, prefix, "t")
    assert owner == "3" and 4000 < pttl <= 5000
    assert stored_opts(raw, prefix, "3")["de"] == {"id": "t", "ttl": 5000}


def test_extend_resets_the_window(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "e", "ttl": 5000, "extend": True}}
    queue.add("w", {}, opts)
    raw.pexpire(f"{prefix}:q:de:e", 1000)
    again = queue.add("w", {}, opts)
    owner, pttl = de(raw, prefix, "e")
    assert again.id == owner == "1" and 4000 < pttl <= 5000
    assert events(raw, prefix)[-1] == {
        "event": "deduplicated", "jobId": "1", "deduplicationId": "e", "deduplicatedJobId": "2"}


# -- debounce: replace a delayed owner ---------------------------------------------------------


def test_debounce_replaces_the_delayed_owner(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "deb", "ttl": 5000, "extend": True, "replace": True},
            "delay": 5000}
    first = queue.add("search", {"q": "h"}, opts)
    raw.pexpire(f"{prefix}:q:de:deb", 1000)
    last = queue.add("search", {"q": "hello"}, opts)

    assert (first.id, last.id, last.deduplicated_job_id) == ("1", "2", None)
    assert not raw.exists(f"{prefix}:q:1")
    assert raw.zrange(f"{prefix}:q:delayed", 0, -1) == ["2"]
    assert json.loads(raw.hget(f"{prefix}:q:2", "data")) == {"q": "hello"}
    owner, pttl = de(raw, prefix, "deb")
    assert owner == "2" and 4000 < pttl <= 5000  # extend: a fresh window
    due = int(events(raw, prefix)[-1]["delay"])
    assert events(raw, prefix)[2:] == [
        {"event": "removed", "jobId": "1", "prev": "delayed"},
        {"event": "deduplicated", "jobId": "2", "deduplicationId": "deb", "deduplicatedJobId": "1"},
        {"event": "added", "jobId": "2", "name": "search"},
        {"event": "delayed", "jobId": "2", "delay": str(due)},
    ]
    assert raw.zscore(f"{prefix}:q:marker", "1") == raw.zscore(f"{prefix}:q:delayed", "2") / 4096


def test_replace_without_extend_keeps_the_ttl(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "r", "ttl": 5000, "replace": True}, "delay": 1000}
    queue.add("w", {}, opts)
    raw.pexpire(f"{prefix}:q:de:r", 1500)
    queue.add("w", {}, opts)
    owner, pttl = de(raw, prefix, "r")
    assert owner == "2" and 0 < pttl <= 1500  # KEEPTTL


def test_replace_leaves_a_waiting_owner_alone_silently(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "r", "replace": True}}
    queue.add("w", {"n": 1}, opts)
    before = len(events(raw, prefix))
    again = queue.add("w", {"n": 2}, opts)
    assert again.id == "1" and again.deduplicated_job_id == "2" and again.data == {"n": 1}
    assert len(events(raw, prefix)) == before  # no event in this case, as BullMQ
    assert de(raw, prefix, "r") == ("1", -1)


# -- 6.7 reschedule --------------------------------------------------------------------------


def test_reschedule_retimes_a_delayed_owner(queue: Queue, raw: Any, prefix: str) -> None:
    now = int(time.time() * 1000)
    owner = queue.add("w", {"v": "a"}, {"deduplication": {"id": "k", "reschedule": True},
                                        "delay": 60000, "timestamp": now})
    t = now + 10
    again = queue.add("w", {"v": "b"}, {"deduplication": {"id": "k", "reschedule": True},
                                        "delay": 5000, "timestamp": t})
    assert again.id == owner.id and again.deduplicated_job_id == "2"
    assert raw.zscore(f"{prefix}:q:delayed", owner.id) == (t + 5000) * 4096
    fields = raw.hgetall(f"{prefix}:q:{owner.id}")
    assert fields["delay"] == "5000" and json.loads(fields["data"]) == {"v": "a"}
    assert fields["timestamp"] == str(now)
    assert events(raw, prefix)[-2:] == [
        {"event": "deduplicated", "jobId": "1", "deduplicationId": "k", "deduplicatedJobId": "2"},
        {"event": "delayed", "jobId": "1", "delay": str(t + 5000)},
    ]
    assert raw.zscore(f"{prefix}:q:marker", "1") == t + 5000
    # no delay on the newcomer = due at its timestamp
    queue.add("w", {}, {"deduplication": {"id": "k", "reschedule": True}, "timestamp": t + 1})
    assert raw.zscore(f"{prefix}:q:delayed", owner.id) == (t + 1) * 4096
    assert raw.hget(f"{prefix}:q:{owner.id}", "delay") == "0"


def test_reschedule_leaves_a_waiting_owner_alone(queue: Queue, raw: Any, prefix: str) -> None:
    queue.add("w", {}, {"deduplication": {"id": "k", "reschedule": True}})
    queue.add("w", {}, {"deduplication": {"id": "k", "reschedule": True}, "delay": 5000})
    assert raw.zcard(f"{prefix}:q:delayed") == 0
    assert [e["event"] for e in events(raw, prefix)] == ["added", "waiting", "deduplicated"]


# -- 6.7 stale key recovery ------------------------------------------------------------------


def test_stale_ttl_less_key_is_taken_over(queue: Queue, raw: Any, prefix: str) -> None:
    raw.set(f"{prefix}:q:de:k", "ghost")
    raw.hset(f"{prefix}:q:dn:k", mapping={"name": "old", "data": "{}", "opts": "{}", "jid": "x"})
    job = queue.add("w", {"n": 1}, deduplication={"id": "k", "ttl": 3000})
    assert job.id == "1" and job.deduplicated_job_id is None
    owner, pttl = de(raw, prefix, "k")
    assert owner == "1" and 2000 < pttl <= 3000
    assert not raw.exists(f"{prefix}:q:dn:k")
    assert "deduplicated" not in [e["event"] for e in events(raw, prefix)]


def test_a_key_with_ttl_is_never_stale(queue: Queue, raw: Any, prefix: str) -> None:
    raw.set(f"{prefix}:q:de:k", "ghost", px=5000)
    job = queue.add("w", {"n": 1}, deduplication={"id": "k"})
    assert job.id == "ghost" and job.deduplicated_job_id == "1" and job.data == {"n": 1}
    assert not raw.exists(f"{prefix}:q:1")


# -- finish and removal ----------------------------------------------------------------------


def test_completion_frees_a_ttl_less_key_and_keeps_a_ttl_window(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    plain = queue.add("w", {}, deduplication={"id": "plain"})
    throttled = queue.add("w", {}, deduplication={"id": "win", "ttl": 60000},
                          remove_on_complete=True)
    failing = queue.add("w", {"fail": True}, deduplication={"id": "bad"})
    foreign = queue.add("w", {}, deduplication={"id": "moved"})
    raw.set(f"{prefix}:q:de:moved", "someone-else")

    def work(job: Job) -> str:
        if job.data.get("fail"):
            raise RuntimeError("no")
        return "ok"

    with Worker("q", work, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") + raw.zcard(f"{prefix}:q:failed") == 3)
    assert not raw.exists(f"{prefix}:q:de:plain") and not raw.exists(f"{prefix}:q:de:bad")
    assert de(raw, prefix, "moved") == ("someone-else", -1)
    owner, pttl = de(raw, prefix, "win")  # the throttle window outlives the removed job
    assert owner == throttled.id and pttl > 50000
    assert not raw.exists(f"{prefix}:q:{throttled.id}")
    assert raw.zscore(f"{prefix}:q:failed", failing.id) is not None
    assert plain.id and foreign.id


def test_a_live_window_naming_another_job_survives_finish(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    job = queue.add("w", {}, deduplication={"id": "x", "ttl": 60000})
    raw.set(f"{prefix}:q:de:x", "another", px=60000)
    with Worker("q", lambda j: 1, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1)
    assert de(raw, prefix, "x")[0] == "another"  # a live window naming someone else stays
    assert job.id


def test_removal_deletes_the_key_it_owns(queue: Queue, raw: Any, prefix: str) -> None:
    owned = queue.add("w", {}, deduplication={"id": "a", "ttl": 60000})
    raw.hset(f"{prefix}:q:dn:a", mapping={"name": "n", "data": "{}", "opts": "{}", "jid": "9"})
    other = queue.add("w", {}, deduplication={"id": "b"})
    raw.set(f"{prefix}:q:de:b", "not-me")
    owned.remove()
    other.remove()
    assert not raw.exists(f"{prefix}:q:de:a") and not raw.exists(f"{prefix}:q:dn:a")
    assert raw.get(f"{prefix}:q:de:b") == "not-me"
    again = queue.add("w", {}, deduplication={"id": "a"})
    assert again.deduplicated_job_id is None


def test_get_and_remove_deduplication_key(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.add("w", {}, deduplication={"id": "g", "ttl": 60000})
    assert queue.get_deduplication_job_id("g") == job.id
    assert queue.getDeduplicationJobId("nope") is None
    assert queue.remove_deduplication_key("g") == 1
    assert queue.removeDeduplicationKey("g") == 0
    assert queue.get_deduplication_job_id("g") is None
    assert queue.add("w", {}, deduplication={"id": "g"}).id == "2"
    with pytest.raises(InvalidArgument):
        queue.get_deduplication_job_id("")


# -- keepLastIfActive with our Worker -------------------------------------------------------


def test_keep_last_if_active_parks_and_requeues(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    opts = {"deduplication": {"id": "k", "keepLastIfActive": True, "ttl": 1000}}
    release = threading.Event()
    started: list[str] = []

    def work(job: Job) -> Any:
        started.append(job.id)
        if job.id == "1":
            assert release.wait(10)
        return job.data

    first = queue.add("sync", {"v": 1}, opts)
    assert de(raw, prefix, "k") == ("1", -1)  # keepLastIfActive: no expiry
    worker = Worker("q", work, connection=redis_url, prefix=prefix, drain_delay=1)
    with worker:
        wait_for(lambda: started == ["1"])
        second = queue.add("sync", {"v": 2}, opts)
        third = queue.add("sync", {"v": 3}, opts)
        assert (second.id, second.deduplicated_job_id) == ("1", "2")
        assert (third.id, third.deduplicated_job_id) == ("1", "3")
        parked = raw.hgetall(f"{prefix}:q:dn:k")
        assert parked.keys() == {"name", "data", "opts", "jid"}
        assert (parked["name"], parked["jid"]) == ("sync", "3")
        assert json.loads(parked["data"]) == {"v": 3}
        assert json.loads(parked["opts"])["de"] == opts["deduplication"]
        assert de(raw, prefix, "k") == ("1", -1)
        assert [e for e in events(raw, prefix) if e["event"] == "deduplicated"] == [
            {"event": "deduplicated", "jobId": "1", "deduplicationId": "k", "deduplicatedJobId": i}
            for i in ("2", "3")
        ]
        release.set()
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 2)
    assert started == ["1", "3"]
    assert not raw.exists(f"{prefix}:q:dn:k") and not raw.exists(f"{prefix}:q:de:k")
    assert not raw.exists(f"{prefix}:q:2")
    requeued = raw.hgetall(f"{prefix}:q:3")
    assert json.loads(requeued["data"]) == {"v": 3} and requeued["deid"] == "k"
    assert int(requeued["timestamp"]) >= int(raw.hget(f"{prefix}:q:1", "processedOn"))
    assert raw.get(f"{prefix}:q:id") == "4"  # the requeue moved the counter too
    names = [(e["event"], e.get("jobId")) for e in events(raw, prefix)]
    i = names.index(("completed", "1"))
    assert names[i - 2:i] == [("added", "3"), ("waiting", "3")]
    assert first.id == "1"


def test_keep_last_requeue_honours_delay_and_priority(queue: Queue, raw: Any, prefix: str) -> None:
    queue.add("a", {}, deduplication={"id": "k", "keepLastIfActive": True})
    raw.lrem(f"{prefix}:q:wait", 0, "1")
    raw.lpush(f"{prefix}:q:active", "1")  # as if a worker (token "0") had it
    queue.add("b", {"x": 1}, {"deduplication": {"id": "k", "keepLastIfActive": True},
                              "delay": 4000, "priority": 2})
    assert raw.hget(f"{prefix}:q:dn:k", "jid") == "2"
    job = queue.get_job("1")
    assert job is not None
    conn = queue.connection
    keys = queue.keys
    now = int(time.time() * 1000)
    reply = conn.run_script("finishJob", (
        keys.wait, keys.active, keys.prioritized, keys.events, keys.stalled, keys.limiter,
        keys.delayed, keys.meta, keys.pc, keys.completed, keys.job("1"), keys.marker,
        keys.op("t-1")), ("1", now, "completed", "null", keys.base, "0", "", "", 1000, 0, "",
                          "0", 30000, "", "", "", 60000))
    assert reply == 0
    assert raw.zscore(f"{prefix}:q:delayed", "2") == (now + 4000) * 4096
    fields = raw.hgetall(f"{prefix}:q:2")
    assert (fields["delay"], fields["priority"], fields["timestamp"]) == ("4000", "2", str(now))
    assert de(raw, prefix, "k") == ("2", -1)
    assert not raw.exists(f"{prefix}:q:dn:k")


def test_replace_discards_a_parked_job(queue: Queue, raw: Any, prefix: str) -> None:
    opts = {"deduplication": {"id": "r", "replace": True, "keepLastIfActive": True}, "delay": 5000}
    queue.add("w", {}, opts)
    raw.hset(f"{prefix}:q:dn:r", mapping={"name": "n", "data": "{}", "opts": "{}", "jid": "9"})
    raw.set(f"{prefix}:q:de:r", "1", px=5000)
    queue.add("w", {}, opts)
    assert not raw.exists(f"{prefix}:q:dn:r")
    assert de(raw, prefix, "r") == ("2", -1)  # keepLastIfActive: no expiry


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        {"deduplication": {}},
        {"deduplication": {"id": ""}},
        {"deduplication": {"id": 5}},
        {"deduplication": {"ttl": 100}},
        {"deduplication": "d"},
        {"deduplication": {"id": "d", "ttl": 0}},
        {"deduplication": {"id": "d", "ttl": -5}},
        {"deduplication": {"id": "d", "ttl": 1.5}},
        {"deduplication": {"id": "d", "ttl": True}},
        {"deduplication": {"id": "d", "extend": "yes"}},
        {"deduplication": {"id": "d", "replace": 1}},
        {"deduplication": {"id": "d", "keepLastIfActive": "y"}},
        {"deduplication": {"id": "d", "colour": "red"}},
        {"deduplication": {"id": "d", "keepLastIfActive": True, "keep_last_if_active": True}},
        {"deduplication": {"id": "d"}, "parent": {"id": "p", "queue": "x:q"}},
        {"debounce": {"id": "d"}},
    ],
)
def test_bad_input_writes_nothing(queue: Queue, raw: Any, prefix: str, opts: dict) -> None:
    queue.add("seed", {}, deduplication={"id": "d", "ttl": 60000})
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument):
        queue.add("job", {"n": 1}, opts)
    with pytest.raises(InvalidArgument):
        queue.add_bulk([{"name": "ok", "opts": {"deduplication": {"id": "z"}}},
                        {"name": "bad", "opts": opts}])
    assert snapshot(raw, prefix) == before


# -- the README example (kept word for word in the README's "Deduplication" section) ---------

README_EXAMPLE = '''
from bullmq_sync import Queue

queue = Queue("paint", connection="redis://localhost:6379")

# Simple mode: one job per id until that job completes or fails
job = queue.add("paint", {"color": "white"}, {"deduplication": {"id": "custom-dedup-id"}})
same = queue.add("paint", {"color": "black"}, {"deduplication": {"id": "custom-dedup-id"}})
assert same.id == job.id and same.deduplicated_job_id is not None  # the existing job

# Throttle mode: at most one job per id every ttl ms
queue.add("house", {"color": "white"}, {"deduplication": {"id": "house", "ttl": 5000}})

# Debounce mode: the last add of a burst wins (the delayed job is replaced)
opts = {"deduplication": {"id": "search", "ttl": 5000, "extend": True, "replace": True},
        "delay": 5000}
queue.add("search", {"q": "h"}, opts)
last = queue.add("search", {"q": "hello"}, opts)
assert queue.get_deduplication_job_id("search") == last.id

# BullMQ 6.7: push a delayed job back instead of adding another one
queue.add("report", {}, {"deduplication": {"id": "report", "reschedule": True}, "delay": 60000})
queue.add("report", {}, {"deduplication": {"id": "report", "reschedule": True}, "delay": 60000})

# While a job runs, keep only the latest update; it is enqueued when the running one finishes
queue.add("sync", {"rev": 1}, deduplication={"id": "sync-42", "keepLastIfActive": True})

queue.remove_deduplication_key("custom-dedup-id")  # the next add with this id is stored
queue.close()
'''


def test_readme_example_runs(redis_url: str, raw: Any, prefix: str) -> None:
    code = README_EXAMPLE.replace(
        'connection="redis://localhost:6379"', f'connection="{redis_url}", prefix="{prefix}"'
    )
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert raw.get(f"{prefix}:paint:de:search") == "5"
    assert raw.zrange(f"{prefix}:paint:delayed", 0, -1) == ["5", "6"]
    assert not raw.exists(f"{prefix}:paint:de:custom-dedup-id")
    assert raw.pttl(f"{prefix}:paint:de:house") > 0
