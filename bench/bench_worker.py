"""No-op worker throughput: bullmq-sync's Worker vs Node BullMQ 6.7's and the async port's.

    python bench/bench_worker.py [--rounds 3] [--jobs 10000] [--concurrency 1 8 32]

Each round fills one fresh queue per contender with ``--jobs`` no-op jobs (untimed, one
``add_bulk``), then times a worker draining it: from the worker's creation to the last
``completed``. Contenders run one after the other inside each round (interleaved, order rotated),
against one private, pinned redis-server (never the machine's own), at the same concurrency.
Around each drain the server's ``INFO cpu`` is read: the Redis server's CPU time per job (user
+ sys, usec; everything the server did for that drain, network included), and ``INFO
commandstats`` (reset before) gives the commands per job and where the time went (the usec of
an EVALSHA includes the commands it ran, which are also counted under their own names). The
client's CPU time per job (user + sys of the worker's process, all its threads, from the
worker's creation to the last ``completed``; Node's from ``process.cpuUsage``) is printed too:
from concurrency 8 on it tells which side is the limit.
Prints jobs/s per round, medians and ratios, for each concurrency. Our worker runs twice:
as configured by default, and with ``batch_scheduling=False`` (every thread under Linux's
default policy), so the effect of that setting is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
import uuid
from collections.abc import Callable

import redis
from common import NodeScript, add_placement_option, cpus, node_ready, pin_self, start_redis

from bullmq_sync import Job, Queue, Worker


def fill(url: str, prefix: str, jobs: int) -> None:
    with Queue("bench", connection=url, prefix=prefix) as queue:
        for start in range(0, jobs, 1000):
            queue.add_bulk([{"name": "noop", "data": {"i": i}}
                            for i in range(start, min(jobs, start + 1000))])


CLIENT_CPU_S = [0.0]
"""The client CPU seconds (user + sys) of the last drain, set by each contender."""


def ours(url: str, prefix: str, jobs: int, concurrency: int, batch: bool = True) -> float:
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def completed(job: Job, result: object) -> None:
        with lock:
            count[0] += 1
            if count[0] >= jobs:
                done.set()

    started, cpu = time.perf_counter(), time.process_time()
    worker = Worker("bench", lambda job: None, connection=url, prefix=prefix,
                    concurrency=concurrency, on_completed=completed, batch_scheduling=batch)
    done.wait(300)
    elapsed = time.perf_counter() - started
    CLIENT_CPU_S[0] = time.process_time() - cpu
    worker.close()
    return elapsed


def ours_default_scheduling(url: str, prefix: str, jobs: int, concurrency: int) -> float:
    """Ours with ``batch_scheduling=False``: every thread under the default policy."""
    return ours(url, prefix, jobs, concurrency, batch=False)


def async_port(url: str, prefix: str, jobs: int, concurrency: int) -> float:
    from bullmq import Worker as AsyncWorker

    async def main() -> float:
        done = asyncio.Event()
        count = [0]

        async def noop(job: object, token: object) -> None:
            return None

        def completed(job: object, result: object) -> None:
            count[0] += 1
            if count[0] >= jobs:
                done.set()

        started, cpu = time.perf_counter(), time.process_time()
        worker = AsyncWorker("bench", noop, {"connection": url, "prefix": prefix,
                                             "concurrency": concurrency})
        worker.on("completed", completed)
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        CLIENT_CPU_S[0] = time.process_time() - cpu
        await worker.close()
        return elapsed

    return asyncio.run(main())


class NodeWorker(NodeScript):
    def __init__(self, url: str, cpu: int | None) -> None:
        super().__init__("node_worker.js", url, cpu)

    def __call__(self, url: str, prefix: str, jobs: int, concurrency: int) -> float:
        request = {"queue": "bench", "prefix": prefix, "count": jobs, "concurrency": concurrency}
        reply = self.ask(request)
        CLIENT_CPU_S[0] = float(reply["cpu_us"]) / 1e6
        return float(reply["ms"]) / 1000


def server_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """``INFO commandstats`` as {command: (calls, usec)}."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for name, v in stats.items()}


def server_cpu_seconds(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def server_io(client: redis.Redis) -> tuple[int, int]:
    """(socket reads, socket writes) the server has processed (INFO stats, Redis >= 6)."""
    stats = client.info("stats")
    return int(stats.get("total_reads_processed", 0)), int(stats.get("total_writes_processed", 0))


IO_PER_JOB: dict[str, list[tuple[float, float]]] = {}
"""Per contender: (server socket reads per job, writes per job) of each drain."""


def drain_measured(
    client: redis.Redis, run: Callable[[str, str, int, int], float], url: str, jobs: int,
    concurrency: int,
) -> tuple[float, float, float, dict[str, tuple[int, int]]]:
    """(jobs/s, server CPU usec per job, client CPU usec per job, commandstats) of one drain."""
    prefix = f"bw{uuid.uuid4().hex[:8]}"
    fill(url, prefix, jobs)
    client.config_resetstat()
    before = server_cpu_seconds(client)
    reads, writes = server_io(client)
    elapsed = run(url, prefix, jobs, concurrency)
    cpu_us = (server_cpu_seconds(client) - before) * 1e6 / jobs
    reads_after, writes_after = server_io(client)
    IO_PER_JOB.setdefault(getattr(run, "__name__", type(run).__name__), []).append(
        ((reads_after - reads) / jobs, (writes_after - writes) / jobs))
    stats = server_stats(client)
    for name in ("config|resetstat", "info"):
        stats.pop(name, None)
    return jobs / elapsed, cpu_us, CLIENT_CPU_S[0] * 1e6 / jobs, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--no-async-port", action="store_true", help="leave the async port out")
    parser.add_argument("--no-default-scheduling", action="store_true",
                        help="leave out our worker with batch_scheduling=False")
    parser.add_argument("--top", type=int, default=4, help="commands shown per contender")
    add_placement_option(parser)
    args = parser.parse_args()

    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)
    pin_self(client_cpu)
    url = server.url
    client = redis.Redis.from_url(url, decode_responses=True)
    contenders: dict[str, Callable[[str, str, int, int], float]] = {"bullmq-sync": ours}
    if not args.no_default_scheduling:
        contenders["bullmq-sync, batch_scheduling=False"] = ours_default_scheduling
    node = NodeWorker(url, client_cpu) if node_ready() else None
    if node is not None:
        contenders["node bullmq 6.7"] = node
    else:
        print("!!! NODE BULLMQ NOT RUN: node or tests/interop/node_modules is missing "
              "(npm ci --prefix tests/interop); no ratio against Node below !!!", flush=True)
    if not args.no_async_port:
        try:
            import bullmq  # noqa: F401

            contenders["async port"] = async_port
        except ImportError:
            print("!!! ASYNC PORT NOT RUN: pip install bullmq !!!", flush=True)

    names = list(contenders)
    summary = []
    try:
        for concurrency in args.concurrency:
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            server_us: dict[str, list[float]] = {name: [] for name in contenders}
            client_us: dict[str, list[float]] = {name: [] for name in contenders}
            calls: dict[str, list[dict[str, tuple[int, int]]]] = {name: [] for name in contenders}
            for round_no in range(args.rounds):
                order = names[round_no % len(names):] + names[:round_no % len(names)]
                line = []
                for name in order:
                    rate, cpu_us, own_us, stats = drain_measured(
                        client, contenders[name], url, args.jobs, concurrency)
                    rates[name].append(rate)
                    server_us[name].append(cpu_us)
                    client_us[name].append(own_us)
                    calls[name].append(stats)
                    line.append(f"{name} {rate:7.0f}/s {cpu_us:5.1f}us {own_us:5.1f}us")
                print(f"c={concurrency} round {round_no + 1}: " + "  ".join(line), flush=True)
            medians = {name: statistics.median(v) for name, v in rates.items()}
            us = {name: statistics.median(v) for name, v in server_us.items()}
            own = {name: statistics.median(v) for name, v in client_us.items()}
            print(f"\nno-op jobs at concurrency {concurrency}, {args.jobs} jobs, median of "
                  f"{args.rounds} rounds: jobs/s, Redis server and client CPU usec per job, "
                  "commands per job")
            for name in names:
                last = calls[name][-1]
                per_job = sum(c for c, _ in last.values()) / args.jobs
                top = sorted(last.items(), key=lambda kv: -kv[1][1])[:args.top]
                detail = ", ".join(f"{cmd} {c / args.jobs:.2f}x {u / args.jobs:.1f}us"
                                   for cmd, (c, u) in top)
                key = getattr(contenders[name], "__name__", type(contenders[name]).__name__)
                io = IO_PER_JOB.get(key, [(0.0, 0.0)])[-1]
                print(f"  {name:34s} {medians[name]:8.0f} jobs/s  {us[name]:5.1f} us/job  "
                      f"client {own[name]:5.1f} us/job  {per_job:4.2f} cmds/job  "
                      f"{io[0]:.2f} reads {io[1]:.2f} writes/job  [{detail}]")
            base = medians["bullmq-sync"]
            for name in names[1:]:
                ratio = base / medians[name]
                cpu_ratios = [a / b for a, b in zip(server_us["bullmq-sync"], server_us[name],
                                                    strict=True)]
                summary.append(f"c={concurrency}: bullmq-sync / {name}: {ratio:.2f}x jobs/s, "
                               f"server CPU us/job {us['bullmq-sync']:.1f} vs {us[name]:.1f} "
                               f"(per-round ratio median {statistics.median(cpu_ratios):.2f}), "
                               f"client CPU us/job {own['bullmq-sync']:.1f} vs {own[name]:.1f}")
                print(f"  bullmq-sync / {name}: {ratio:.2f}x")
            print(flush=True)
    finally:
        if node is not None:
            node.close()
        server.stop()
    print("summary")
    for line in summary:
        print("  " + line)


if __name__ == "__main__":
    main()
