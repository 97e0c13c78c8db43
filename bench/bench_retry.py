"""Job.retry() latency and thread scaling, side by side in one run.

    python bench/bench_retry.py [--rounds 15] [--chunk 100]

Contenders, interleaved chunk by chunk against one private, pinned redis-server (never the
machine's own): a bare redis-py EVALSHA of the same script through redis-py's stock pool
(the floor), bullmq-sync ``job.retry()``, Node BullMQ 6.7 ``job.retry()``, and the official async
Python port driven by ``asyncio.run`` per call (what a sync handler has to do today). Every timed
call retries a distinct failed job created untimed just before its chunk.

Then thread scaling: 4 and 64 threads on a 16-connection pool, ours against redis-py's stock
``BlockingConnectionPool``: throughput, p50/p99 and peak connections. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

import redis

from common import NodeScript, add_placement_option, cpus, describe, node_ready, percentile, pin_self, start_redis

from bullmq_sync import Connection, Job, Queue
from bullmq_sync.connection import OUTCOME_TTL_MS
from bullmq_sync.job import retry_script_call
from bullmq_sync.scripts import LIBRARY


def make_failed_jobs(client: redis.Redis, prefix: str, queue: str, ids: list[str]) -> None:
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hset(
            f"{prefix}:{queue}:{job_id}",
            mapping={
                "name": "bench", "data": '{"n":1}', "opts": '{"attempts":1}', "timestamp": now,
                "delay": 0, "priority": 0, "processedOn": now, "finishedOn": now,
                "failedReason": "boom", "atm": 1, "ats": 1,
            },
        )
        pipe.zadd(f"{prefix}:{queue}:failed", {job_id: now})
    pipe.delete(f"{prefix}:{queue}:wait")
    pipe.execute()


class NodeRetry(NodeScript):
    def __init__(self, url: str, cpu: int | None) -> None:
        super().__init__("node_retry.js", url, cpu)

    def run(self, prefix: str, queue: str, ids: list[str]) -> list[float]:
        return list(self.ask({"queue": queue, "prefix": prefix, "ids": ids})["us"])


def time_calls(calls: list) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - started) / 1000)
    return out



def latency(url: str, client_cpu: int | None, rounds: int, chunk: int) -> None:
    raw = redis.Redis.from_url(url)
    stock = redis.Redis.from_url(url)  # redis-py's stock ConnectionPool
    sha = LIBRARY.get("retryFinishedJob").sha
    stock.script_load(LIBRARY.get("retryFinishedJob").source)
    queue = Queue("ours", connection=Connection(url), prefix="bench")
    bare = Queue("bare", connection=queue.connection, prefix="bench")  # only builds key names
    node = NodeRetry(url, client_cpu) if node_ready() else None
    try:
        import bullmq as port  # the official async port, from PyPI
    except ImportError:
        port = None
    results: dict[str, list[float]] = {"evalsha": [], "bullmq-sync": [], "node": [], "async-port": []}

    async def port_once(job_id: str) -> None:
        q = port.Queue("port", {"connection": url, "prefix": "bench"})
        job = await port.Job.fromId(q, job_id)
        await job.retry("failed")
        await q.close()

    for r in range(rounds):
        ids = [f"{r}-{i}" for i in range(chunk)]
        make_failed_jobs(raw, "bench", "bare", ids)
        calls = []
        for job_id in ids:
            keys, placeholders = retry_script_call(bare, job_id)
            # the TTL placeholder our connection fills in: the bare call sends the same value
            args = [bare.connection.outcome_ttl_ms if a is OUTCOME_TTL_MS else a
                    for a in placeholders]
            calls.append(lambda k=keys, a=args: stock.evalsha(sha, len(k), *k, *a))
        results["evalsha"] += time_calls(calls)

        make_failed_jobs(raw, "bench", "ours", ids)
        jobs = [Job.from_id(queue, job_id) for job_id in ids]
        results["bullmq-sync"] += time_calls([job.retry for job in jobs])

        if node is not None:
            make_failed_jobs(raw, "bench", "node", ids)
            results["node"] += node.run("bench", "node", ids)

        if port is not None:
            few = ids[: max(5, chunk // 10)]
            make_failed_jobs(raw, "bench", "port", few)
            results["async-port"] += time_calls([lambda j=j: asyncio.run(port_once(j)) for j in few])

    if node is not None:
        node.close()
    queue.close()
    print(f"\nJob.retry() latency, microseconds ({rounds} interleaved rounds of {chunk} calls)")
    for name, values in results.items():
        if values:
            print(f"  {name:12s} {describe(values)}  (n={len(values)})")
    ours = statistics.median(results["bullmq-sync"])
    print(f"  ratio bullmq-sync / bare EVALSHA p50: {ours / statistics.median(results['evalsha']):.2f}x")
    if results["node"]:
        print(f"  ratio bullmq-sync / Node BullMQ p50:  {ours / statistics.median(results['node']):.2f}x (goal <= 1.0)")
    if results["async-port"]:
        print(f"  async port / bullmq-sync p50:         {statistics.median(results['async-port']) / ours:.1f}x faster (goal >= 15)")


def scaling(url: str, calls_per_thread: int) -> None:
    raw = redis.Redis.from_url(url)
    print(f"\nThreads on a 16-connection pool ({calls_per_thread} retries per thread)")
    print(f"  {'pool':10s} {'threads':>7s} {'calls/s':>9s} {'p50 us':>8s} {'p99 us':>9s} {'p99/p50':>7s} {'peak conns':>10s}")
    for pool_name in ("fair", "stock"):
        for threads in (4, 64):
            if pool_name == "fair":
                connection = Connection(url, max_connections=16, pool_timeout=60)
            else:
                connection = Connection(
                    redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, max_connections=16, timeout=60))
                )
            queue_name = f"scale-{pool_name}-{threads}"
            queue = Queue(queue_name, connection=connection, prefix="bench")
            per_thread = []
            for t in range(threads):
                ids = [f"{t}-{i}" for i in range(calls_per_thread)]
                make_failed_jobs(raw, "bench", queue_name, ids)
                per_thread.append([Job.from_id(queue, job_id) for job_id in ids])
            latencies: list[float] = []
            lock = threading.Lock()
            barrier = threading.Barrier(threads + 1)

            def run(jobs: list[Job]) -> None:
                barrier.wait()
                mine = time_calls([job.retry for job in jobs])
                with lock:
                    latencies.extend(mine)

            workers = [threading.Thread(target=run, args=(jobs,)) for jobs in per_thread]
            for w in workers:
                w.start()
            barrier.wait()
            started = time.perf_counter()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - started
            pool = connection.pool
            peak = getattr(pool, "peak_in_use", None) or len(getattr(pool, "_connections", []))
            p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
            print(f"  {pool_name:10s} {threads:7d} {len(latencies) / elapsed:9.0f} {p50:8.0f} {p99:9.0f} {p99 / p50:7.1f} {peak:10d}")
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--scale-calls", type=int, default=200)
    add_placement_option(parser)
    args = parser.parse_args()
    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)
    pin_self(client_cpu)
    print(f"redis-server pinned to CPU {server_cpu}, clients to CPU {client_cpu}; Node: {node_ready()}")
    try:
        latency(server.url, client_cpu, args.rounds, args.chunk)
        scaling(server.url, args.scale_calls)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
