"""Benchmark: adding jobs and bulk retry, bullmq_sync vs Node BullMQ 6 vs the async port.

Contenders run interleaved, round after round, on one private redis-server that this script
starts (pinned with taskset, see --placement) and empties between measurements. Prints the median
jobs/s per contender and the ratios ours/Node and ours/async port; for retry_jobs also the
longest single Redis command (SLOWLOG) and each client's peak memory.

    python bench/bench_add.py                 # default, about a minute
    python bench/bench_add.py --add 5000 --bulk 20000 --retry 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bullmq_sync import Connection, Queue  # noqa: E402
from common import add_placement_option, cpus, pin_self, start_redis  # noqa: E402

NODE_HELPER = Path(__file__).resolve().parent / "node_add.js"
SLOW_US = 1000


def node_op(url: str, prefix: str, op: str, n: int) -> dict[str, float]:
    out = subprocess.run(["node", str(NODE_HELPER), url, prefix, "q", op, str(n)],
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout)


def async_port(url: str, prefix: str, op: str, n: int) -> float:
    import bullmq

    async def run() -> float:
        queue = bullmq.Queue("q", {"connection": url, "prefix": prefix})
        try:
            started = time.perf_counter()
            if op == "add":
                for i in range(n):
                    await queue.add("bench", {"i": i})
            else:
                await queue.addBulk([{"name": "bench", "data": {"i": i}} for i in range(n)])
            return time.perf_counter() - started
        finally:
            await queue.close()

    return asyncio.run(run())


def ours(url: str, prefix: str, op: str, n: int) -> float:
    with Connection(url) as connection:
        queue = Queue("q", prefix=prefix, connection=connection)
        queue.get_job_counts("waiting")  # connect and preload scripts outside the timing
        started = time.perf_counter()
        if op == "add":
            for i in range(n):
                queue.add("bench", {"i": i})
        else:
            queue.add_bulk([{"name": "bench", "data": {"i": i}} for i in range(n)])
        return time.perf_counter() - started


def make_failed(url: str, prefix: str, n: int) -> None:
    """n failed jobs as a Node worker leaves them (hash fields + failed zset)."""
    with Connection(url) as connection:
        queue = Queue("q", prefix=prefix, connection=connection)
        for start in range(0, n, 20_000):
            queue.add_bulk([{"name": "bench", "data": {"i": i}}
                            for i in range(start, min(n, start + 20_000))])
    client = redis.Redis.from_url(url)
    base = f"{prefix}:q:"
    client.delete(base + "wait", base + "events", base + "marker")
    pipe = client.pipeline(transaction=False)
    now = int(time.time() * 1000) - n - 10_000
    for i in range(1, n + 1):
        pipe.hset(base + str(i), mapping={"finishedOn": now + i, "processedOn": now + i - 1,
                                          "failedReason": "boom", "atm": 1, "ats": 1})
        pipe.zadd(base + "failed", {str(i): now + i})
        if i % 5000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()


def slowest(client: redis.Redis) -> tuple[float, str]:
    entries = client.slowlog_get(1024)
    if not entries:
        return 0.0, "-"
    top = max(entries, key=lambda e: e["duration"])
    command = top.get("command", b"")
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    return top["duration"] / 1000.0, str(command)[:40]


def retry_ours(url: str, prefix: str) -> tuple[float, float]:
    with Connection(url) as connection:
        queue = Queue("q", prefix=prefix, connection=connection)
        queue.get_job_counts("failed")
        tracemalloc.start()
        started = time.perf_counter()
        moved = queue.retry_jobs(count=1000)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert moved > 0
        return seconds, peak / 1048576


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--add", type=int, default=2000, help="jobs per sequential add run")
    parser.add_argument("--bulk", type=int, default=20_000, help="jobs per add_bulk run")
    parser.add_argument("--retry", type=int, default=50_000, help="failed jobs per retry run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-async", action="store_true", help="skip the async port")
    add_placement_option(parser)
    args = parser.parse_args()

    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)  # ours alone: emptying it between runs is safe
    pin_self(client_cpu)
    url = server.url
    client = redis.Redis.from_url(url)
    try:
        rates: dict[str, list[float]] = {}
        retry: dict[str, list[tuple[float, float, float, str]]] = {"bullmq_sync": [], "node": []}

        def record(key: str, n: int, seconds: float) -> None:
            rates.setdefault(key, []).append(n / seconds)

        contenders: list[tuple[str, Callable[[str, str, str, int], float]]] = [
            ("bullmq_sync", ours),
            ("node", lambda u, p, op, n: node_op(u, p, op, n)["seconds"]),
        ]
        if not args.no_async:
            contenders.append(("async_port", async_port))
        for round_no in range(args.rounds):
            order = contenders[round_no % len(contenders):] + contenders[:round_no % len(contenders)]
            for name, run in order:
                for op, n in (("add", args.add), ("addBulk", args.bulk)):
                    client.flushall()
                    record(f"{op}:{name}", n, run(url, f"b{round_no}", op, n))
            for name in (["bullmq_sync", "node"] if round_no % 2 == 0 else ["node", "bullmq_sync"]):
                client.flushall()
                make_failed(url, "r", args.retry)
                client.config_set("slowlog-log-slower-than", SLOW_US)
                client.config_set("slowlog-max-len", 1024)
                client.slowlog_reset()
                if name == "node":
                    result = node_op(url, "r", "retryJobs", args.retry)
                    seconds, peak = result["seconds"], result["peakRssMb"]
                else:
                    seconds, peak = retry_ours(url, "r")
                slow_ms, command = slowest(client)
                assert client.zcard("r:q:failed") == 0 and client.llen("r:q:wait") == args.retry
                retry[name].append((args.retry / seconds, slow_ms, peak, command))
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

        print(f"\nRedis {client.info()['redis_version']}, {args.rounds} rounds, medians")
        for op, label, n in (("add", "add (sequential)", args.add), ("addBulk", "add_bulk", args.bulk)):
            print(f"\n{label}, {n} jobs per run:")
            med = {c: statistics.median(rates[f"{op}:{c}"]) for c, _ in contenders}
            for c, _ in contenders:
                print(f"  {c:12s} {med[c]:>10.0f} jobs/s")
            print(f"  ratio bullmq_sync/node       {med['bullmq_sync'] / med['node']:.2f}x")
            if "async_port" in med:
                print(f"  ratio bullmq_sync/async_port {med['bullmq_sync'] / med['async_port']:.2f}x")
        print(f"\nretry_jobs over {args.retry} failed jobs (1000 per script call):")
        for name, rows in retry.items():
            rate = statistics.median(r[0] for r in rows)
            slow = max(r[1] for r in rows)
            peak = statistics.median(r[2] for r in rows)
            memory = "tracemalloc peak" if name == "bullmq_sync" else "process peak RSS"
            print(f"  {name:12s} {rate:>10.0f} jobs/s  longest command {slow:6.2f} ms  "
                  f"{memory} {peak:6.1f} MB")
        ratio = statistics.median(r[0] for r in retry["bullmq_sync"]) / statistics.median(
            r[0] for r in retry["node"])
        print(f"  ratio bullmq_sync/node {ratio:.2f}x")
    finally:
        client.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
