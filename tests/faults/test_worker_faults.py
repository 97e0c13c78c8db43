"""The Worker under faults: a worker process killed mid-job, a Redis restart, a big backlog."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import redis
from helpers import wait_for

from bullmq_sync import Job, Queue, Worker

CHILD = textwrap.dedent(
    """
    import sys, time
    from bullmq_sync import Worker

    url, prefix = sys.argv[1], sys.argv[2]

    def hang(job):
        print("STARTED", job.id, flush=True)
        time.sleep(600)

    Worker("q", hang, connection=url, prefix=prefix, lock_duration=1000,
           stalled_interval=60000).run()
    """
)


def test_kill_9_mid_job_is_recovered_by_the_stalled_checker(redis_url: str, raw: Any, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        job = queue.add("work", {"n": 1})
    child = subprocess.Popen([sys.executable, "-c", CHILD, redis_url, prefix],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.split() == ["STARTED", job.id]
        assert raw.lrange(f"{prefix}:q:active", 0, -1) == [job.id]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    raw.delete(f"{prefix}:q:stalled-check")  # the dead worker's checker ran at start
    stalled: list[str] = []
    done: list[Any] = []
    with Worker("q", lambda j: "recovered", connection=redis_url, prefix=prefix,
                stalled_interval=700, drain_delay=0.5, on_stalled=stalled.append,
                on_completed=lambda j, r: done.append(j.id)):
        wait_for(lambda: done == [job.id], timeout=20)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert stalled == [job.id]
    assert fields["stc"] == "1" and fields["returnvalue"] == '"recovered"'
    assert fields["ats"] == "2" and fields["atm"] == "1"
    kinds = [f["event"] for _, f in raw.xrange(f"{prefix}:q:events") if f.get("jobId") == job.id]
    assert "stalled" in kinds and kinds[-1] == "completed"


def _enable_aof(client: redis.Redis) -> None:
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "always")
    wait_for(lambda: int(client.info("persistence")["aof_rewrite_in_progress"]) == 0
             and int(client.info("persistence")["aof_enabled"]) == 1, timeout=20)


def test_redis_restart_mid_run_loses_and_duplicates_nothing(local_redis: Any) -> None:
    client = redis.Redis.from_url(local_redis.url, decode_responses=True)
    _enable_aof(client)
    local_redis.extra = ["--appendonly", "yes", "--appendfsync", "always"]
    total = 300
    with Queue("q", connection=local_redis.url, prefix="r") as queue:
        queue.add_bulk([{"name": "w", "data": {"i": i}} for i in range(total)])
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def proc(job: Job) -> int:
        with lock:
            runs[job.id] += 1
        time.sleep(0.01)
        return int(job.data["i"])

    errors: list[BaseException] = []
    worker = Worker("q", proc, connection=local_redis.url, prefix="r", concurrency=4,
                    drain_delay=1, on_error=errors.append)
    with worker:
        wait_for(lambda: sum(runs.values()) > total // 3, timeout=30, step=0.005)
        before = _completed(local_redis.url)
        local_redis.restart()
        wait_for(lambda: _completed(local_redis.url) == total, timeout=60)
    client = redis.Redis.from_url(local_redis.url, decode_responses=True)
    completions = collections.Counter(
        f["jobId"] for _, f in client.xrange("r:q:events") if f["event"] == "completed")
    assert len(completions) == total and set(completions.values()) == {1}
    assert client.llen("r:q:active") == 0 and client.llen("r:q:wait") == 0
    assert all(client.hget(f"r:q:{job_id}", "atm") == "1" for job_id in completions)
    assert max(runs.values()) == 1, [k for k, v in runs.items() if v > 1]
    assert 0 < before < total  # the restart really happened mid-run
    client.close()


def _completed(url: str) -> int:
    try:
        with redis.Redis.from_url(url) as client:
            return int(client.zcard("r:q:completed"))
    except redis.exceptions.ConnectionError:
        return -1


def test_ten_thousand_jobs_with_concurrency_16(redis_url: str, raw: Any, prefix: str) -> None:
    total = 10_000
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        for start in range(0, total, 1000):
            queue.add_bulk([{"name": "n", "data": {"i": i}} for i in range(start, start + 1000)])
    seen: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def proc(job: Job) -> None:
        with lock:
            seen[int(job.data["i"])] += 1

    started = time.monotonic()
    with Worker("q", proc, connection=redis_url, prefix=prefix, concurrency=16, drain_delay=1):
        wait_for(lambda: sum(seen.values()) >= total and raw.llen(f"{prefix}:q:active") == 0,
                 timeout=120, step=0.1)
    elapsed = time.monotonic() - started
    assert len(seen) == total and set(seen.values()) == {1}
    assert raw.llen(f"{prefix}:q:wait") == 0
    assert raw.zcard(f"{prefix}:q:completed") == total
    assert raw.zcard(f"{prefix}:q:failed") == 0
    print(f"10,000 jobs, concurrency 16: {elapsed:.1f} s ({total / elapsed:.0f} jobs/s)")
