"""``Worker(..., processes=N)``: real child processes run the processor; Redis, locks and
stalled checks stay in the parent; a child that dies fails its job and is replaced."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from helpers import wait_for
from jobfactory import snapshot

from bullmq_sync import InvalidArgument, Queue, Worker


def make(redis_url: str, prefix: str, processor: str, **kw: Any) -> Worker:
    kw.setdefault("drain_delay", 1)
    return Worker("q", processor, connection=redis_url, prefix=prefix, **kw)


def fields(raw: Any, prefix: str, job_id: str) -> dict[str, str]:
    return raw.hgetall(f"{prefix}:q:{job_id}")


def test_two_processes_really_run_two_jobs_at_once(queue: Queue, raw: Any, redis_url: str,
                                                    prefix: str) -> None:
    jobs = [queue.add("busy", {"ms": 400}) for _ in range(4)]
    with make(redis_url, prefix, "worker_processors:busy", processes=2) as worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 4, timeout=60)
        assert worker.concurrency == 2
    runs = [json.loads(fields(raw, prefix, j.id)["returnvalue"]) for j in jobs]
    assert len({r["pid"] for r in runs}) == 2 and os.getpid() not in {r["pid"] for r in runs}
    # Overlap of the run intervals (not speed): some pair of jobs ran at the same moment. Jobs
    # run one after another never overlap; how much they do depends on when the second child
    # was ready (about 200 ms late on a slow VM), so any clear overlap proves it.
    overlaps = [
        min(a["end"], b["end"]) - max(a["start"], b["start"])
        for i, a in enumerate(runs) for b in runs[i + 1:] if a["pid"] != b["pid"]
    ]
    assert max(overlaps) > 0.05


def test_a_child_that_exits_fails_its_job_and_is_replaced(queue: Queue, raw: Any,
                                                          redis_url: str, prefix: str) -> None:
    once = queue.add("exit", {"code": 3}, {"attempts": 2})
    with make(redis_url, prefix, "worker_processors:exit_first_time", processes=1) as worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1, timeout=60)
        assert worker._runner.replaced == 1  # type: ignore[attr-defined]
    done = fields(raw, prefix, once.id)
    assert done["returnvalue"] == '"second attempt in a new child"' and done["atm"] == "2"
    stack = json.loads(done["stacktrace"])
    assert "Unexpected exit code: 3 signal: null" in stack[0]
    # With no attempts left the reason stays, as BullMQ's sandbox reports an exited child.
    last = queue.add("exit", {"code": 7})
    with make(redis_url, prefix, "worker_processors:exit_first_time", processes=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1, timeout=60)
    assert fields(raw, prefix, last.id)["failedReason"] == "Unexpected exit code: 7 signal: null"


def test_a_child_killed_with_sigkill_fails_its_job(queue: Queue, raw: Any, redis_url: str,
                                                   prefix: str) -> None:
    job = queue.add("hang", {})
    after = queue.add("busy", {"ms": 10})
    with make(redis_url, prefix, "worker_processors:hang_after_progress", processes=1):
        wait_for(lambda: fields(raw, prefix, job.id).get("progress"), timeout=60)
        child = json.loads(fields(raw, prefix, job.id)["progress"])["pid"]
        os.kill(child, signal.SIGKILL)  # as the kernel's OOM killer would
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1, timeout=30)
        # The replacement child goes on with the next job (this processor hangs too).
        wait_for(lambda: fields(raw, prefix, after.id).get("progress"), timeout=60)
        new_child = json.loads(fields(raw, prefix, after.id)["progress"])["pid"]
        assert new_child != child
        os.kill(new_child, signal.SIGKILL)
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 2, timeout=30)
    reason = fields(raw, prefix, job.id)["failedReason"]
    assert reason == "Unexpected exit code: null signal: SIGKILL"


def test_progress_and_log_from_a_child(queue: Queue, raw: Any, redis_url: str,
                                       prefix: str) -> None:
    seen: list[Any] = []
    job = queue.add("p", {})
    second = queue.add("p", {})
    worker = make(redis_url, prefix, "worker_processors:progress_and_log", processes=1,
                  autorun=False)
    worker.on("progress", lambda j, p: seen.append((j.id, p)))
    with worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 2, timeout=60)
    assert json.loads(fields(raw, prefix, job.id)["returnvalue"]) == {
        "rows": [1, 2], "progress": {"pct": 100}}
    assert raw.lrange(f"{prefix}:q:{job.id}:logs", 0, -1) == ["half way", "done"]
    assert json.loads(fields(raw, prefix, job.id)["progress"]) == {"pct": 100}
    assert (job.id, 50) in seen and (job.id, {"pct": 100}) in seen
    assert fields(raw, prefix, second.id)["returnvalue"]  # the same child ran the second job


def test_a_refused_progress_raises_in_the_child(queue: Queue, raw: Any, redis_url: str,
                                                prefix: str) -> None:
    job = queue.add("p", {})
    with make(redis_url, prefix, "worker_processors:bad_progress", processes=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1, timeout=60)
    assert fields(raw, prefix, job.id)["returnvalue"].startswith('"refused: ')


def test_children_are_recycled_after_max_jobs(queue: Queue, raw: Any, redis_url: str,
                                              prefix: str) -> None:
    jobs = [queue.add("pid", {}) for _ in range(5)]
    with make(redis_url, prefix, "worker_processors:pid", processes=1,
              max_jobs_per_child=2) as worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 5, timeout=60)
        assert worker._runner.recycled == 2  # type: ignore[attr-defined]
    pids = [int(fields(raw, prefix, j.id)["returnvalue"]) for j in jobs]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_errors_in_a_child_fail_the_job_with_its_type_and_traceback(
    queue: Queue, raw: Any, redis_url: str, prefix: str, log_events: list[dict[str, Any]]
) -> None:
    retried = queue.add("f", {}, {"attempts": 2})
    fatal = queue.add("f", {"fatal": True}, {"attempts": 5})
    with make(redis_url, prefix, "worker_processors:fail", processes=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 2, timeout=60)
    first = fields(raw, prefix, retried.id)
    assert (first["failedReason"], first["atm"]) == ("child boom", "2")
    stack = json.loads(first["stacktrace"])
    assert "LookupError: child boom" in stack[0] and "worker_processors.py" in stack[0]
    assert (fields(raw, prefix, fatal.id)["failedReason"], fields(raw, prefix, fatal.id)["atm"]) \
        == ("no point retrying", "1")
    failures = [e for e in log_events if e["event"] == "job.failed"]
    assert {e["error_type"] for e in failures} == {"LookupError", "UnrecoverableError"}


def test_not_json_result_and_cancel_in_a_child(queue: Queue, raw: Any, redis_url: str,
                                               prefix: str) -> None:
    odd = queue.add("x", {})
    with make(redis_url, prefix, "worker_processors:not_json", processes=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1, timeout=60)
    assert "not JSON serializable" in fields(raw, prefix, odd.id)["failedReason"]
    long = queue.add("c", {})
    with make(redis_url, prefix, "worker_processors:cancellable", processes=1) as worker:
        wait_for(lambda: fields(raw, prefix, long.id).get("progress"), timeout=60)
        assert worker.cancel_job(long.id, "stop it")
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 2, timeout=30)
    assert fields(raw, prefix, long.id)["failedReason"] == "stop it"


def test_locks_stay_renewed_by_the_parent(queue: Queue, raw: Any, redis_url: str,
                                          prefix: str) -> None:
    job = queue.add("busy", {"ms": 1500})
    with make(redis_url, prefix, "worker_processors:busy", processes=1, lock_duration=500):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1, timeout=60)
    assert fields(raw, prefix, job.id)["atm"] == "1"
    assert raw.hget(f"{prefix}:q:{job.id}", "stc") in (None, "0")


@pytest.mark.parametrize(
    ("processor", "kw", "words"),
    [
        (lambda j: None, {"processes": 2}, "importable"),
        ("no_colon", {"processes": 2}, "module:function"),
        ("worker_processors:nope", {"processes": 1}, "cannot load"),
        ("no_such_module_xyz:f", {"processes": 1}, "cannot load"),
        ("worker_processors:busy", {"processes": 0}, "processes"),
        ("worker_processors:busy", {"processes": 2, "concurrency": 4}, "concurrency"),
        ("worker_processors:busy", {"max_jobs_per_child": 3}, "processes=N"),
        ("worker_processors:busy", {}, "processes=N"),
    ],
)
def test_bad_process_settings_refused_before_redis(processor: Any, kw: dict[str, Any],
                                                   words: str, raw: Any, prefix: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        Worker("q", processor, connection="redis://127.0.0.1:1", prefix=prefix, **kw)
    assert snapshot(raw, prefix) == {}


def test_graceful_close_waits_for_the_child_and_stops_it(queue: Queue, raw: Any,
                                                         redis_url: str, prefix: str) -> None:
    job = queue.add("busy", {"ms": 600})
    worker = make(redis_url, prefix, "worker_processors:busy", processes=1)
    wait_for(lambda: raw.lrange(f"{prefix}:q:active", 0, -1) == [job.id], timeout=60)
    pids = worker._runner.pids()  # type: ignore[attr-defined]
    assert worker.close() is True
    assert raw.zcard(f"{prefix}:q:completed") == 1
    time.sleep(0.2)
    for child in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)


def test_child_initializer_runs_once_in_each_child(queue: Queue, raw: Any, redis_url: str,
                                                   prefix: str) -> None:
    jobs = [queue.add("i", {}) for _ in range(3)]
    with make(redis_url, prefix, "worker_processors:was_initialized", processes=1,
              child_initializer="worker_processors:initialize"):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 3, timeout=60)
    assert [fields(raw, prefix, j.id)["returnvalue"] for j in jobs] == ["true"] * 3
    with pytest.raises(InvalidArgument, match="child_initializer"):
        Worker("q", lambda j: None, connection=redis_url, prefix=prefix,
               child_initializer="worker_processors:initialize")
