"""No-op worker throughput: bullmq-sync's Worker vs Node BullMQ 6.7's and the async port's.

    python bench/bench_worker.py [--rounds 3] [--jobs 10000] [--concurrency 8]

Each round fills one fresh queue per contender with ``--jobs`` no-op jobs (untimed, one
``add_bulk``), then times a worker draining it: from the worker's creation to the last
``completed``. Contenders run one after the other inside each round (interleaved, order rotated),
against one private, pinned redis-server (never the machine's own), at the same concurrency.
Prints jobs/s per round, medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable

from common import ROOT, add_placement_option, cpus, node_ready, pin_self, start_redis, taskset

from bullmq_sync import Job, Queue, Worker


def fill(url: str, prefix: str, jobs: int) -> None:
    with Queue("bench", connection=url, prefix=prefix) as queue:
        for start in range(0, jobs, 1000):
            queue.add_bulk([{"name": "noop", "data": {"i": i}}
                            for i in range(start, min(jobs, start + 1000))])


def ours(url: str, prefix: str, jobs: int, concurrency: int) -> float:
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def completed(job: Job, result: object) -> None:
        with lock:
            count[0] += 1
            if count[0] >= jobs:
                done.set()

    started = time.perf_counter()
    worker = Worker("bench", lambda job: None, connection=url, prefix=prefix,
                    concurrency=concurrency, on_completed=completed).start()
    done.wait(300)
    elapsed = time.perf_counter() - started
    worker.close()
    return elapsed


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

        started = time.perf_counter()
        worker = AsyncWorker("bench", noop, {"connection": url, "prefix": prefix,
                                             "concurrency": concurrency})
        worker.on("completed", completed)
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        await worker.close()
        return elapsed

    return asyncio.run(main())


class NodeWorker:
    def __init__(self, url: str, cpu: int | None) -> None:
        self.proc = subprocess.Popen(
            [*taskset(cpu), "node", str(ROOT / "bench" / "node_worker.js"), url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def __call__(self, url: str, prefix: str, jobs: int, concurrency: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"queue": "bench", "prefix": prefix, "count": jobs, "concurrency": concurrency}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return float(reply["ms"]) / 1000

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=8)
    add_placement_option(parser)
    args = parser.parse_args()

    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)
    pin_self(client_cpu)
    url = server.url
    contenders: dict[str, Callable[[str, str, int, int], float]] = {"bullmq-sync": ours}
    node = NodeWorker(url, client_cpu) if node_ready() else None
    if node is not None:
        contenders["node bullmq 6.7"] = node
    try:
        import bullmq  # noqa: F401

        contenders["async port"] = async_port
    except ImportError:
        pass

    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    try:
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            line = []
            for name in order:
                prefix = f"bw{uuid.uuid4().hex[:8]}"
                fill(url, prefix, args.jobs)
                elapsed = contenders[name](url, prefix, args.jobs, args.concurrency)
                rates[name].append(args.jobs / elapsed)
                line.append(f"{name} {args.jobs / elapsed:8.0f}/s")
            print(f"round {round_no + 1}: " + "  ".join(line), flush=True)
    finally:
        if node is not None:
            node.close()
        server.stop()

    print(f"\nno-op jobs/s at concurrency {args.concurrency}, {args.jobs} jobs, "
          f"median of {args.rounds} rounds")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"  {name:18s} {value:9.0f} jobs/s")
    base = medians["bullmq-sync"]
    for name, value in medians.items():
        if name != "bullmq-sync":
            print(f"  bullmq-sync / {name}: {base / value:.2f}x")


if __name__ == "__main__":
    main()
