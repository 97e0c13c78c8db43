"""Job schedulers (BullMQ 6 repeatable jobs): exact Redis state of our producer and worker."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from helpers import events, wait_for

from bullmq_sync import InvalidArgument, Job, JobBelongsToJobScheduler, Queue, Worker
from bullmq_sync.schedulers import after_fetch, cron_next


def snapshot(raw: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(f"{prefix}:*")):
        kind = raw.type(key)
        if kind == "hash":
            out[key] = raw.hgetall(key)
        elif kind == "zset":
            out[key] = raw.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            out[key] = raw.lrange(key, 0, -1)
        elif kind == "stream":
            out[key] = raw.xlen(key)
        else:
            out[key] = raw.get(key)
    return out


def test_upsert_every_stores_scheduler_and_first_iteration(
    queue: Queue, raw: Any, prefix: str
) -> None:
    before = int(time.time() * 1000)
    job = queue.upsert_job_scheduler(
        "ev", {"every": 400}, {"name": "tick", "data": {"a": 1}, "opts": {"attempts": 2}}
    )
    after = int(time.time() * 1000)
    assert job is not None
    millis = int(job.id.split(":")[-1])
    assert job.id == f"repeat:ev:{millis}" and before <= millis <= after
    assert raw.zscore(f"{prefix}:q:repeat", "ev") == millis
    assert raw.hgetall(f"{prefix}:q:repeat:ev") == {
        "name": "tick",
        "every": "400",
        "offset": str(millis % 400),
        "opts": '{"attempts":2}',
        "data": '{"a":1}',
        "ic": "1",
    }
    h = raw.hgetall(f"{prefix}:q:{job.id}")
    assert h["rjk"] == "ev" and h["delay"] == "0" and h["name"] == "tick"
    assert json.loads(h["opts"]) == {
        "attempts": 2,
        "repeat": {"every": 400, "count": 1},
        "repeatJobKey": "ev",
        "jobId": job.id,
        "delay": 0,
        "timestamp": json.loads(h["opts"])["timestamp"],
    }
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == [job.id]
    assert events(raw, prefix) == [
        {"event": "added", "jobId": job.id, "name": "tick"},
        {"event": "waiting", "jobId": job.id},
    ]
    assert queue.get_job_schedulers_count() == 1
    assert queue.getJobScheduler("ev") == {
        "key": "ev",
        "name": "tick",
        "next": millis,
        "iterationCount": 1,
        "every": 400,
        "offset": millis % 400,
        "template": {"data": {"a": 1}, "opts": {"attempts": 2}},
    }


def test_upsert_pattern_is_delayed_at_the_cron_time(queue: Queue, raw: Any, prefix: str) -> None:
    before = int(time.time() * 1000)
    job = queue.upsert_job_scheduler("cr", {"pattern": "0 0 * * *", "tz": "Asia/Tokyo"})
    assert job is not None
    expected = cron_next("0 0 * * *", before, tz="Asia/Tokyo")
    assert job.id == f"repeat:cr:{expected}"
    assert raw.zscore(f"{prefix}:q:delayed", job.id) == expected * 4096
    assert raw.zscore(f"{prefix}:q:marker", "1") == expected
    h = raw.hgetall(f"{prefix}:q:repeat:cr")
    assert h == {"name": "cr", "tz": "Asia/Tokyo", "pattern": "0 0 * * *", "offset": "0", "ic": "1"}
    opts = json.loads(raw.hget(f"{prefix}:q:{job.id}", "opts"))
    assert opts["prevMillis"] == expected and opts["repeat"] == {
        "pattern": "0 0 * * *",
        "tz": "Asia/Tokyo",
        "count": 1,
    }
    assert events(raw, prefix)[-1] == {"event": "delayed", "jobId": job.id, "delay": str(expected)}


def test_upsert_again_replaces_the_pending_iteration(queue: Queue, raw: Any, prefix: str) -> None:
    first = queue.upsert_job_scheduler("cr", {"pattern": "0 0 * * *"}, {"data": {"v": 1}})
    second = queue.upsert_job_scheduler("cr", {"pattern": "0 0 * * *"}, {"data": {"v": 2}})
    assert first is not None and second is not None and first.id == second.id
    assert second.data == {"v": 2}
    assert raw.zcard(f"{prefix}:q:delayed") == 1
    assert raw.hget(f"{prefix}:q:repeat:cr", "data") == '{"v":2}'


def test_our_worker_creates_each_next_iteration(
    queue: Queue, raw: Any, prefix: str, redis_url: str
) -> None:
    first = queue.upsert_job_scheduler("ev", {"every": 300}, {"name": "tick"})
    assert first is not None
    offset = int(raw.hget(f"{prefix}:q:repeat:ev", "offset"))
    seen: list[str] = []
    worker = Worker(
        "q", lambda job: seen.append(job.id), connection=redis_url, prefix=prefix, drain_delay=0.2
    )
    try:
        wait_for(lambda: len(seen) >= 4)
    finally:
        worker.close()
    millis = [int(i.split(":")[-1]) for i in seen[:4]]
    assert seen[0] == first.id
    assert all(b - a >= 300 and b % 300 == offset for a, b in itertools.pairwise(millis))
    nxt = int(raw.zscore(f"{prefix}:q:repeat", "ev"))
    nid = f"repeat:ev:{nxt}"
    ic = int(raw.hget(f"{prefix}:q:repeat:ev", "ic"))
    opts = json.loads(raw.hget(f"{prefix}:q:{nid}", "opts"))
    assert opts["repeat"] == {"every": 300, "count": ic} and opts["jobId"] == nid
    assert opts["attempts"] == 0 and "prevMillis" not in opts
    assert raw.zscore(f"{prefix}:q:delayed", nid) // 4096 == nxt
    stream = events(raw, prefix)
    second = f"repeat:ev:{millis[1]}"
    at = stream.index({"event": "active", "jobId": first.id, "prev": "waiting"})
    assert stream[at + 1] == {"event": "added", "jobId": second, "name": "tick"}
    assert stream[at + 2] == {"event": "delayed", "jobId": second, "delay": str(millis[1])}


def fetch(queue: Queue, raw: Any, job_id: str) -> tuple[str, dict[str, str]]:
    """A job's id and hash as a fetch hands them over (for driving after_fetch directly)."""
    job = Job.from_id(queue, job_id)
    assert job is not None
    return job.id, job.raw


def test_limit_stops_the_schedule(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.upsert_job_scheduler("lim", {"every": 1000, "limit": 2})
    assert job is not None
    second = after_fetch(queue, *fetch(queue, raw, job.id))
    assert second is not None and second.startswith("repeat:lim:")
    before = snapshot(raw, prefix)
    assert after_fetch(queue, *fetch(queue, raw, second)) is None  # count 3 > limit 2
    assert snapshot(raw, prefix) == before
    assert raw.hget(f"{prefix}:q:repeat:lim", "ic") == "2"


def test_end_date_stops_the_schedule(queue: Queue, raw: Any, prefix: str) -> None:
    end = int(time.time() * 1000) + 300
    job = queue.upsert_job_scheduler("end", {"every": 100, "endDate": end})
    assert job is not None
    assert json.loads(raw.hget(f"{prefix}:q:{job.id}", "opts"))["repeat"]["endDate"] == end
    assert raw.hget(f"{prefix}:q:repeat:end", "endDate") == str(end)
    time.sleep(0.35)
    before = snapshot(raw, prefix)
    assert after_fetch(queue, *fetch(queue, raw, job.id)) is None
    assert snapshot(raw, prefix) == before


def test_a_stale_iteration_creates_nothing(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.upsert_job_scheduler("ev", {"every": 1000})
    assert job is not None
    nxt = after_fetch(queue, *fetch(queue, raw, job.id))
    assert nxt is not None
    before = snapshot(raw, prefix)
    assert after_fetch(queue, *fetch(queue, raw, job.id)) is None  # no longer the current one
    assert snapshot(raw, prefix) == before


def test_next_iteration_call_is_exactly_once(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.upsert_job_scheduler("ev", {"every": 1000})
    assert job is not None
    tokens = iter(["tok-a", "tok-a"])
    queue.next_token = lambda: next(tokens)  # type: ignore[method-assign]
    first = after_fetch(queue, *fetch(queue, raw, job.id))
    state = snapshot(raw, prefix)
    assert after_fetch(queue, *fetch(queue, raw, job.id)) == first
    assert snapshot(raw, prefix) == state


def test_current_iteration_cannot_be_removed(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.upsert_job_scheduler("cr", {"pattern": "0 0 * * *"})
    assert job is not None
    with pytest.raises(JobBelongsToJobScheduler):
        job.remove()
    assert raw.exists(f"{prefix}:q:{job.id}") == 1


def test_remove_job_scheduler(queue: Queue, raw: Any, prefix: str) -> None:
    job = queue.upsert_job_scheduler("cr", {"pattern": "0 0 * * *"})
    assert job is not None
    assert queue.remove_job_scheduler("cr") is True
    assert raw.exists(f"{prefix}:q:repeat:cr", f"{prefix}:q:{job.id}") == 0
    assert raw.zcard(f"{prefix}:q:repeat") == 0 and raw.zcard(f"{prefix}:q:delayed") == 0
    assert events(raw, prefix)[-1] == {"event": "removed", "jobId": job.id, "prev": "delayed"}
    assert queue.removeJobScheduler("cr") is False
    assert queue.get_job_scheduler("cr") is None


def test_get_job_schedulers_orders_by_next_time(queue: Queue) -> None:
    queue.upsert_job_scheduler("late", {"pattern": "0 0 1 1 *"})
    queue.upsert_job_scheduler("soon", {"every": 60000})
    assert [s["key"] for s in queue.get_job_schedulers()] == ["late", "soon"]
    assert [s["key"] for s in queue.get_job_schedulers(asc=True)] == ["soon", "late"]
    assert [s["key"] for s in queue.getJobSchedulers(0, 0, True)] == ["soon"]


@pytest.mark.parametrize(
    "repeat,template",
    [
        ({}, None),
        ({"every": 100, "pattern": "* * * * *"}, None),
        ({"every": 0}, None),
        ({"every": "100"}, None),
        ({"pattern": "not a cron"}, None),
        ({"pattern": "* * * * *", "tz": "Mars/Olympus"}, None),
        ({"pattern": "* * * * *", "immediately": True, "startDate": 1}, None),
        ({"every": 100, "endDate": 1000}, None),
        ({"every": 100, "limit": 0}, None),
        ({"every": 100, "bogus": 1}, None),
        ({"every": 100}, {"opts": {"jobId": "x"}}),
        ({"every": 100}, {"opts": {"attempts": -1}}),
        ({"every": 100}, {"data": object()}),
        ({"every": 100}, {"other": 1}),
    ],
)
def test_bad_input_is_refused_before_any_write(
    queue: Queue, raw: Any, prefix: str, repeat: dict[str, Any], template: Any
) -> None:
    with pytest.raises(InvalidArgument):
        queue.upsert_job_scheduler("s", repeat, template)
    assert list(raw.scan_iter(f"{prefix}:*")) == []


def test_readme_example(redis_url: str, prefix: str) -> None:
    # --- README example (copied into the schedulers README section) ---
    from bullmq_sync import Queue, Worker

    queue = Queue("reports", connection=redis_url, prefix=prefix)
    queue.upsert_job_scheduler(
        "nightly-report",
        {"pattern": "0 3 * * *", "tz": "Europe/Paris"},
        {"name": "report", "data": {"kind": "daily"}, "opts": {"attempts": 3}},
    )
    queue.upsert_job_scheduler("heartbeat", {"every": 200}, {"name": "ping"})
    done: list[str] = []
    worker = Worker(
        "reports",
        lambda job: done.append(job.name),
        connection=redis_url,
        prefix=prefix,
        drain_delay=0.2,
    )  # starts at once; each fetched iteration schedules the next one, as Node workers do
    # --- end of README example ---
    try:
        wait_for(lambda: done.count("ping") >= 3)
    finally:
        worker.close()
    assert queue.get_job_scheduler("nightly-report")["pattern"] == "0 3 * * *"  # type: ignore[index]
    assert queue.get_job_schedulers_count() == 2
    assert queue.remove_job_scheduler("heartbeat") is True
    queue.close()
