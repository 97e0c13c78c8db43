"""Benchmark: retry_tree (one script call) vs one Job.retry call per failed job, on failed flows.

A flow of ``size`` jobs (root -> parents -> 9 leaves each, failParentOnFailure everywhere) is
failed by hand as BullMQ leaves it, then put back: by ``retry_tree`` in one call, or by one
``Job.retry`` per failed job (what a user has today; it does NOT restore the parents'
dependencies, so it is only a cost reference). Interleaved rounds, medians; also the server
time of the retry_tree script (SLOWLOG), i.e. how long it blocks Redis.

    python bench/bench_flow_retry.py                    # sizes 100 and 1000, 7 rounds
    python bench/bench_flow_retry.py --sizes 100 1000 10000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from common import add_placement_option, cpus, pin_self, start_redis  # noqa: E402

from bullmq_sync import Connection, FlowProducer, Job, Queue  # noqa: E402


def failed_flow(conn: Connection, raw: redis.Redis, prefix: str, size: int) -> list[str]:
    """Add a flow of about ``size`` jobs and fail every job by hand; job keys, leaves first."""
    parents = max(1, (size - 1) // 10)
    flow = {"name": "root", "queueName": "top", "children": [
        {"name": "mid", "queueName": "mid", "opts": {"failParentOnFailure": True},
         "children": [{"name": "leaf", "queueName": "leaves",
                       "opts": {"failParentOnFailure": True}} for _ in range(9)]}
        for _ in range(parents)]}
    with FlowProducer(connection=conn, prefix=prefix) as flows:
        root = flows.add(flow)
    pipe = raw.pipeline(transaction=False)
    ordered: list[str] = []
    for mid in root.children:
        for leaf in mid.children:
            pipe.lrem(f"{prefix}:leaves:wait", 1, leaf.job.id)
            pipe.zadd(f"{prefix}:leaves:failed", {leaf.job.id: 1})
            pipe.hset(leaf.job.key, mapping={"failedReason": "x", "finishedOn": 1, "atm": 1})
            pipe.srem(mid.job.key + ":dependencies", leaf.job.key)
            pipe.zadd(mid.job.key + ":unsuccessful", {leaf.job.key: 1})
            ordered.append(leaf.job.key)
    for mid in root.children:
        pipe.zrem(f"{prefix}:mid:waiting-children", mid.job.id)
        pipe.zadd(f"{prefix}:mid:failed", {mid.job.id: 1})
        pipe.srem(root.job.key + ":dependencies", mid.job.key)
        pipe.zadd(root.job.key + ":unsuccessful", {mid.job.key: 1})
        ordered.append(mid.job.key)
    pipe.zrem(f"{prefix}:top:waiting-children", root.job.id)
    pipe.zadd(f"{prefix}:top:failed", {root.job.id: 1})
    pipe.execute()
    ordered.append(root.job.key)
    return ordered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=7)
    add_placement_option(parser)
    args = parser.parse_args()
    server_cpu, client_cpu = cpus(args.placement)
    pin_self(client_cpu)
    server = start_redis(server_cpu)
    raw = redis.Redis(port=server.port, decode_responses=True)
    raw.config_set("slowlog-log-slower-than", 0)
    conn = Connection(server.url)
    queues: dict[tuple[str, str], Queue] = {}

    def queue(prefix: str, name: str) -> Queue:
        if (prefix, name) not in queues:
            queues[(prefix, name)] = Queue(name, connection=conn, prefix=prefix)
        return queues[(prefix, name)]

    try:
        print(f"{'jobs':>6} {'retry_tree ms':>14} {'per-job ms':>11} {'ratio':>6} "
              f"{'script µs (blocks Redis)':>25}")
        for size in args.sizes:
            tree_ms: list[float] = []
            each_ms: list[float] = []
            script_us: list[float] = []
            for _ in range(args.rounds):
                prefix = "b" + uuid.uuid4().hex[:8]
                keys = failed_flow(conn, raw, prefix, size)
                root_queue = queue(prefix, "top")
                root = Job.from_id(root_queue, keys[-1].rpartition(":")[2])
                assert root is not None
                raw.slowlog_reset()
                started = time.perf_counter()
                moved = root.retry_tree(max_jobs=100_000)
                tree_ms.append((time.perf_counter() - started) * 1000)
                assert len(moved) == len(keys)
                script_us.extend(e["duration"] for e in raw.slowlog_get(128)
                                 if "evalsha" in str(e["command"]).lower())

                prefix = "b" + uuid.uuid4().hex[:8]
                keys = failed_flow(conn, raw, prefix, size)
                jobs = []
                for key in keys:
                    base, _, job_id = key.rpartition(":")
                    job = Job(queue=queue(prefix, base.rpartition(":")[2]), id=job_id)
                    jobs.append(job)
                started = time.perf_counter()
                for job in jobs:
                    job.retry()
                each_ms.append((time.perf_counter() - started) * 1000)
                for key in raw.scan_iter(match=f"{prefix}:*", count=1000):
                    raw.unlink(key)
            tree, each = statistics.median(tree_ms), statistics.median(each_ms)
            print(f"{len(keys):>6} {tree:>14.2f} {each:>11.2f} {each / tree:>6.1f} "
                  f"{statistics.median(script_us):>25.0f}")
    finally:
        conn.close()
        raw.close()
        server.stop()


if __name__ == "__main__":
    main()
