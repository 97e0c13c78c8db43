"""Manual processing loop: bullmq-sync's get_next_job / move_to_completed vs Node BullMQ 6.7's.

    python bench/bench_manual.py [--rounds 5] [--jobs 3000] [--placement split|shared|none]

BullMQ's "manually processing jobs" loop on one thread: take a job with ``getNextJob(token)``,
complete it with ``moveToCompleted(value, token, fetchNext)``; with ``fetchNext`` the job
handed back is the next one (one script call per job), without it the loop asks
``getNextJob`` again (two calls per job). Each round fills a fresh queue per contender
(untimed ``add_bulk``) and times the loop from the first take to the last completion.
Contenders run interleaved (order rotated) against one private, pinned redis-server.
Prints jobs/s per round, medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from common import NodeScript, add_placement_option, cpus, node_ready, pin_self, start_redis

from bullmq_sync import Queue, Worker


def fill(url: str, prefix: str, jobs: int) -> None:
    with Queue("bench", connection=url, prefix=prefix) as queue:
        for start in range(0, jobs, 1000):
            queue.add_bulk([{"name": "noop", "data": {"i": i}}
                            for i in range(start, min(jobs, start + 1000))])


def ours(fetch_next: bool) -> Callable[[str, str, int], float]:
    def run(url: str, prefix: str, jobs: int) -> float:
        worker = Worker("bench", None, connection=url, prefix=prefix, drain_delay=1)
        token = "bench-token"
        done = 0
        started = time.perf_counter()
        job = worker.get_next_job(token)
        while job is not None and done < jobs:
            nxt = job.move_to_completed(None, token, fetch_next=fetch_next)
            done += 1
            job = nxt if fetch_next else worker.get_next_job(token, block=False)
        elapsed = time.perf_counter() - started
        worker.close()
        if done < jobs:
            raise RuntimeError(f"only {done} jobs")
        return elapsed

    return run


class NodeManual(NodeScript):
    def __init__(self, url: str, cpu: int | None, fetch_next: bool) -> None:
        super().__init__("node_manual.js", url, cpu)
        self.fetch_next = fetch_next

    def __call__(self, url: str, prefix: str, jobs: int) -> float:
        request = {"queue": "bench", "prefix": prefix, "count": jobs,
                   "fetchNext": self.fetch_next}
        return float(self.ask(request)["ms"]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3000)
    add_placement_option(parser)
    args = parser.parse_args()

    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)
    pin_self(client_cpu)
    url = server.url
    contenders: dict[str, Callable[[str, str, int], float]] = {
        "ours fetch_next": ours(True),
        "ours get_next_job": ours(False),
    }
    nodes: list[NodeManual] = []
    if node_ready():
        nodes = [NodeManual(url, client_cpu, True), NodeManual(url, client_cpu, False)]
        contenders["node fetchNext"] = nodes[0]
        contenders["node getNextJob"] = nodes[1]
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    try:
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            line = []
            for name in order:
                prefix = f"bm{uuid.uuid4().hex[:8]}"
                fill(url, prefix, args.jobs)
                elapsed = contenders[name](url, prefix, args.jobs)
                rates[name].append(args.jobs / elapsed)
                line.append(f"{name} {args.jobs / elapsed:7.0f}/s")
            print(f"round {round_no + 1}: " + "  ".join(line), flush=True)
    finally:
        for node in nodes:
            node.close()
        server.stop()

    print(f"\nmanual loop jobs/s, one thread, {args.jobs} jobs, median of {args.rounds} rounds")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in medians.items():
        print(f"  {name:18s} {value:8.0f} jobs/s")
    for ours_name, node_name in (("ours fetch_next", "node fetchNext"),
                                 ("ours get_next_job", "node getNextJob")):
        if node_name in medians:
            print(f"  {ours_name} / {node_name}: {medians[ours_name] / medians[node_name]:.2f}x")
    print(f"  ours fetch_next / ours get_next_job: "
          f"{medians['ours fetch_next'] / medians['ours get_next_job']:.2f}x")


if __name__ == "__main__":
    main()
