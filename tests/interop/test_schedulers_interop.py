"""Job schedulers across Node BullMQ 6.7 and bullmq-sync: iterations keep coming either way."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Job, Queue, Worker
from bullmq_sync.schedulers import cron_next

pytestmark = pytest.mark.interop

NODE_DIR = Path(__file__).parent




def run_worker_until(queue: Queue, done: Any, timeout: float = 15.0) -> list[str]:
    seen: list[str] = []

    def processor(job: Job) -> Any:
        seen.append(job.id)
        return {"ok": True}

    worker = Worker(
        queue.name, processor, connection=queue.connection, prefix=queue.prefix, drain_delay=0.2
    )
    try:
        wait_for(lambda: done(seen), timeout)
    finally:
        worker.close()
    return seen


def test_our_worker_continues_a_node_every_scheduler(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    job = node6.call(
        "upsertJobScheduler",
        prefix=prefix,
        queue="q",
        schedulerId="ev",
        repeat={"every": 300},
        template={"name": "tick", "data": {"a": 1}, "opts": {"attempts": 2}},
    )
    first = int(job["id"].rsplit(":", 1)[1])
    offset = int(raw.hget(f"{prefix}:q:repeat:ev", "offset"))
    with Queue("q", prefix=prefix, connection=redis_url) as queue:
        seen = run_worker_until(queue, lambda s: len(s) >= 4)
    assert seen[0] == f"repeat:ev:{first}"
    millis = [int(i.rsplit(":", 1)[1]) for i in seen[:4]]
    for ms in millis[1:]:
        assert ms % 300 == offset  # Node's slots: aligned on every + offset
    nxt = raw.zscore(f"{prefix}:q:repeat", "ev")
    assert nxt is not None and int(nxt) % 300 == offset
    nid = f"repeat:ev:{int(nxt)}"
    h = raw.hgetall(f"{prefix}:q:{nid}")
    assert h["rjk"] == "ev" and h["name"] == "tick" and json.loads(h["data"]) == {"a": 1}
    opts = json.loads(h["opts"])
    assert opts["jobId"] == nid and opts["attempts"] == 2 and opts["repeatJobKey"] == "ev"
    assert opts["repeat"]["every"] == 300 and opts["repeat"]["count"] >= 4
    assert "prevMillis" not in opts
    score = raw.zscore(f"{prefix}:q:delayed", nid)
    if score is not None:
        assert int(score) // 4096 == int(nxt)
    ic = int(raw.hget(f"{prefix}:q:repeat:ev", "ic"))
    assert ic == opts["repeat"]["count"]
    # Node still reads the scheduler and sees the same next time
    info = node6.call("getJobScheduler", prefix=prefix, queue="q", schedulerId="ev")
    assert info["next"] == int(nxt) and info["iterationCount"] == ic


def test_our_worker_continues_a_node_pattern_scheduler(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    node6.call(
        "upsertJobScheduler",
        prefix=prefix,
        queue="q",
        schedulerId="cr",
        repeat={"pattern": "* * * * * *", "tz": "Europe/Paris"},
        template={"name": "cron", "data": {"c": 2}},
    )
    with Queue("q", prefix=prefix, connection=redis_url) as queue:
        seen = run_worker_until(queue, lambda s: len(s) >= 3, timeout=10)
    millis = [int(i.rsplit(":", 1)[1]) for i in seen]
    assert all(ms % 1000 == 0 for ms in millis)
    assert millis == sorted(millis) and len(set(millis)) == len(millis)
    nxt = int(raw.zscore(f"{prefix}:q:repeat", "cr"))
    nid = f"repeat:cr:{nxt}"
    opts = json.loads(raw.hget(f"{prefix}:q:{nid}", "opts"))
    assert opts["prevMillis"] == nxt and opts["jobId"] == nid
    assert opts["repeat"]["pattern"] == "* * * * * *" and opts["repeat"]["tz"] == "Europe/Paris"
    assert opts["attempts"] == 0
    assert int(raw.zscore(f"{prefix}:q:delayed", nid)) // 4096 == nxt


def test_node_reads_and_runs_our_scheduler(
    node6: Any, raw: Any, prefix: str, redis_url: str
) -> None:
    with Queue("q", prefix=prefix, connection=redis_url) as queue:
        job = queue.upsert_job_scheduler(
            "ours", {"every": 250}, {"name": "tock", "data": {"x": 1}, "opts": {"attempts": 3}}
        )
        assert job is not None
        info = node6.call("getJobScheduler", prefix=prefix, queue="q", schedulerId="ours")
        assert info["name"] == "tock" and info["every"] == 250
        assert info["template"] == {"data": {"x": 1}, "opts": {"attempts": 3}}
        assert info["next"] == int(job.id.rsplit(":", 1)[1])
        result = node6.call("process", prefix=prefix, queue="q", count=3, timeoutMs=8000)
        ids = [r["jobId"] for r in result]
        assert ids[0] == job.id and all(i.startswith("repeat:ours:") for i in ids)
        assert int(raw.hget(f"{prefix}:q:repeat:ours", "ic")) >= 4
        assert queue.remove_job_scheduler("ours") is True
    assert node6.call("getJobScheduler", prefix=prefix, queue="q", schedulerId="ours") is None


def _node_cron_next(pattern: str, after_ms: int, tz: str) -> int:
    script = (
        "const {CronExpressionParser}=require('cron-parser');"
        "const [p,t,z]=process.argv.slice(1);"
        "console.log(CronExpressionParser.parse(p,{currentDate:new Date(Number(t)),tz:z})"
        ".next().getTime())"
    )
    out = subprocess.run(
        ["node", "-e", script, pattern, str(after_ms), tz],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize(
    "pattern",
    [
        "*/5 * * * *",
        "0 * * * *",
        "0 0 * * *",
        "30 9 * * 1-5",
        "0 0 1 * *",
        "*/10 * * * * *",
        "15 3 * * 0",
        "0 12 15 * *",
        "5 4 * * sun",
    ],
)
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York"])
def test_cron_next_matches_cron_parser(node6: Any, pattern: str, tz: str) -> None:
    for after in (1795956474123, 1774746000000 - 1, 1792000000000):  # incl. a DST switch
        assert cron_next(pattern, after, tz=tz) == _node_cron_next(pattern, after, tz), after


def _strip_times(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k not in ("timestamp", "delay", "jobId", "prevMillis")}


@pytest.mark.parametrize(
    "repeat,template",
    [
        (
            {"every": 60000},
            {"name": "a", "data": {"k": 1}, "opts": {"attempts": 3, "removeOnComplete": True}},
        ),
        ({"every": 60000, "offset": 500, "limit": 4}, None),
        ({"pattern": "0 0 * * *", "tz": "Europe/Paris", "limit": 10}, {"data": {"z": True}}),
    ],
)
def test_upsert_stores_what_node_stores(
    node6: Any, raw: Any, prefix: str, redis_url: str, repeat: dict[str, Any], template: Any
) -> None:
    node6.call(
        "upsertJobScheduler",
        prefix=prefix,
        queue="n",
        schedulerId="s",
        repeat=repeat,
        template=template,
    )
    with Queue("p", prefix=prefix, connection=redis_url) as queue:
        ours = queue.upsert_job_scheduler("s", repeat, template)
    assert ours is not None
    theirs_hash = raw.hgetall(f"{prefix}:n:repeat:s")
    ours_hash = raw.hgetall(f"{prefix}:p:repeat:s")
    for h in (theirs_hash, ours_hash):  # an "every" slot's offset depends on the clock
        if "every" in repeat and "offset" not in repeat:
            h.pop("offset")
        if "opts" in h:
            h["opts"] = json.loads(h["opts"])
    assert ours_hash == theirs_hash
    n_next = int(raw.zscore(f"{prefix}:n:repeat", "s"))
    p_next = int(raw.zscore(f"{prefix}:p:repeat", "s"))
    if "pattern" in repeat:
        assert n_next == p_next
    n_job = raw.hgetall(f"{prefix}:n:repeat:s:{n_next}")
    p_job = raw.hgetall(f"{prefix}:p:repeat:s:{p_next}")
    assert set(n_job) == set(p_job)
    assert _strip_times(json.loads(n_job["opts"])) == _strip_times(json.loads(p_job["opts"]))
    assert set(json.loads(n_job["opts"])) == set(json.loads(p_job["opts"]))
    for field in ("name", "data", "rjk", "priority"):
        assert n_job[field] == p_job[field]
    node_view = node6.call("getJobScheduler", prefix=prefix, queue="p", schedulerId="s")
    node_own = node6.call("getJobScheduler", prefix=prefix, queue="n", schedulerId="s")
    with Queue("n", prefix=prefix, connection=redis_url) as nq:
        assert nq.get_job_scheduler("s") == node_own
    node_view.pop("next"), node_own.pop("next")
    node_view.pop("offset", None), node_own.pop("offset", None)
    assert node_view == node_own
