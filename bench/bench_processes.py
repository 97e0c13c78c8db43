"""CPU-bound jobs: bullmq-sync's Worker with processes=1 and 2 vs Node BullMQ 6.7's sandboxed
(file) processor with concurrency 1 and 2.

    python bench/bench_processes.py [--rounds 3] [--jobs 200] [--job-ms 20]

Each job does a fixed amount of pure-Python work calibrated once to take about ``--job-ms``
ms in one process (Node's processor gets its own calibration to the same time), so two
processes sharing one core would show no gain: the speed-up measures real parallelism.
Each round fills a fresh queue per contender (untimed), then times the worker from its
creation (children included) to the last completion. Contenders interleave, order rotated,
against one private redis-server, no CPU pinning (the children need both cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from common import NodeScript, node_ready, start_redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_tasks import spin

from bullmq_sync import Job, Queue, Worker


def calibrate_python(job_ms: float) -> int:
    n = 20_000
    while True:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            spin(n)
            times.append(time.perf_counter() - t)
        took = statistics.median(times) * 1000
        if took > 5:
            return int(n * job_ms / took)
        n *= 4


def fill(url: str, prefix: str, jobs: int, n: int) -> None:
    with Queue("cpu", connection=url, prefix=prefix) as queue:
        queue.add_bulk([{"name": "spin", "data": {"n": n, "i": i}} for i in range(jobs)])


def ours(processes: int) -> Callable[[str, str, int], float]:
    def run(url: str, prefix: str, jobs: int) -> float:
        done = threading.Event()
        count = [0]
        lock = threading.Lock()

        def completed(job: Job, result: object) -> None:
            with lock:
                count[0] += 1
                if count[0] >= jobs:
                    done.set()

        started = time.perf_counter()
        worker = Worker("cpu", "cpu_tasks:process", connection=url, prefix=prefix,
                        processes=processes, on_completed=completed)
        if not done.wait(600):
            raise RuntimeError("timed out")
        elapsed = time.perf_counter() - started
        worker.close()
        return elapsed

    return run


class NodeSandbox(NodeScript):
    def __init__(self, url: str) -> None:
        super().__init__("node_sandbox.js", url)
        self.n = 0

    def calibrate(self, job_ms: float) -> int:
        n = 200_000
        while True:
            took = self.ask({"calibrate": n})["ms"]
            if took > 5:
                self.n = int(n * job_ms / took)
                return self.n
            n *= 4

    def runner(self, concurrency: int) -> Callable[[str, str, int], float]:
        def run(url: str, prefix: str, jobs: int) -> float:
            request = {"queue": "cpu", "prefix": prefix, "count": jobs,
                       "concurrency": concurrency}
            return self.ask(request)["ms"] / 1000

        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--job-ms", type=float, default=20.0)
    args = parser.parse_args()

    server = start_redis(None)
    url = server.url
    py_n = calibrate_python(args.job_ms)
    contenders: dict[str, tuple[Callable[[str, str, int], float], int]] = {
        "bullmq-sync processes=1": (ours(1), py_n),
        "bullmq-sync processes=2": (ours(2), py_n),
    }
    node = NodeSandbox(url) if node_ready() else None
    if node is not None:
        node_n = node.calibrate(args.job_ms)
        contenders["node sandbox concurrency=1"] = (node.runner(1), node_n)
        contenders["node sandbox concurrency=2"] = (node.runner(2), node_n)
    print(f"work per job calibrated to ~{args.job_ms:.0f} ms: python n={py_n}"
          + (f", node n={node.n}" if node is not None else ""), flush=True)

    rates: dict[str, list[float]] = {name: [] for name in contenders}
    # Each pair runs back to back in every round, so a per-round ratio compares like with like
    # on a machine whose load changes between rounds.
    pairs = [("bullmq-sync processes=1", "bullmq-sync processes=2"),
             ("node sandbox concurrency=1", "node sandbox concurrency=2")]
    try:
        for round_no in range(args.rounds):
            order = [name for pair in (pairs if round_no % 2 == 0 else pairs[::-1])
                     for name in (pair if round_no % 4 < 2 else pair[::-1]) if name in contenders]
            line = []
            for name in order:
                run, n = contenders[name]
                prefix = f"bp{uuid.uuid4().hex[:8]}"
                fill(url, prefix, args.jobs, n)
                elapsed = run(url, prefix, args.jobs)
                rates[name].append(args.jobs / elapsed)
                line.append(f"{name} {args.jobs / elapsed:6.1f}/s")
            print(f"round {round_no + 1}: " + "  ".join(line), flush=True)
    finally:
        if node is not None:
            node.close()
        server.stop()

    print(f"\nCPU-bound jobs/s (~{args.job_ms:.0f} ms of work each), {args.jobs} jobs, "
          f"median of {args.rounds} rounds")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"  {name:28s} {value:8.1f} jobs/s")
    def round_ratios(a: str, b: str) -> str:
        ratios = [y / x for x, y in zip(rates[a], rates[b], strict=True)]
        return (f"median of per-round ratios {statistics.median(ratios):.2f}x "
                f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")

    one, two = medians["bullmq-sync processes=1"], medians["bullmq-sync processes=2"]
    print(f"  bullmq-sync processes=2 / processes=1: {two / one:.2f}x; "
          + round_ratios("bullmq-sync processes=1", "bullmq-sync processes=2"))
    if node is not None:
        n1, n2 = medians["node sandbox concurrency=1"], medians["node sandbox concurrency=2"]
        print(f"  node sandbox concurrency=2 / concurrency=1: {n2 / n1:.2f}x; "
              + round_ratios("node sandbox concurrency=1", "node sandbox concurrency=2"))
        print(f"  bullmq-sync processes=2 / node sandbox concurrency=2: {two / n2:.2f}x")


if __name__ == "__main__":
    main()
