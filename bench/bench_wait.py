"""Benchmark: request/reply with ``job.wait_until_finished`` vs Node's ``waitUntilFinished``.

One private redis-server (pinned, see --placement). Each round times, interleaved: ``--count``
sequential add + wait round trips from one Python thread (our Worker and QueueEvents in the
same process), the same from Node BullMQ 6 (its Worker and QueueEvents in one Node process),
and ``--threads`` Python threads sharing one QueueEvents, each doing ``--count`` round trips
(our Worker with that concurrency). Prints medians over the rounds and the ratio ours/Node.

    python bench/bench_wait.py                  # about half a minute
    python bench/bench_wait.py --count 500 --threads 32 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_placement_option, cpus, node_ready, pin_self, start_redis, taskset  # noqa: E402

from bullmq_sync import Queue, QueueEvents, Worker  # noqa: E402

NODE_HELPER = Path(__file__).resolve().parent / "node_wait.js"


def python_sequential(url: str, count: int) -> list[float]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    with Queue("q", connection=url, prefix=prefix) as queue, QueueEvents(
        "q", connection=url, prefix=prefix
    ) as events, Worker("q", lambda job: job.data, connection=url, prefix=prefix):
        for n in range(20):
            queue.add("echo", {"n": n}).wait_until_finished(events, timeout=10)
        us = []
        for n in range(count):
            started = time.perf_counter()
            queue.add("echo", {"n": n}).wait_until_finished(events, timeout=10)
            us.append((time.perf_counter() - started) * 1e6)
        return us


def python_threads(url: str, count: int, threads: int) -> float:
    """Round trips per second with ``threads`` callers sharing one QueueEvents."""
    prefix = f"b{uuid.uuid4().hex[:8]}"
    with Queue("q", connection=url, prefix=prefix) as queue, QueueEvents(
        "q", connection=url, prefix=prefix
    ) as events, Worker(
        "q", lambda job: job.data, connection=url, prefix=prefix, concurrency=threads
    ):
        queue.add("echo", {}).wait_until_finished(events, timeout=10)

        def caller() -> None:
            for n in range(count):
                queue.add("echo", {"n": n}).wait_until_finished(events, timeout=30)

        workers = [threading.Thread(target=caller) for _ in range(threads)]
        started = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        return threads * count / (time.perf_counter() - started)


def node_sequential(url: str, count: int, cpu: int | None) -> list[float]:
    prefix = f"n{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [*taskset(cpu), "node", str(NODE_HELPER), url, prefix, "q", str(count)],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return list(json.loads(out.stdout)["us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    add_placement_option(parser)
    args = parser.parse_args()
    server_cpu, client_cpu = cpus(args.placement)
    pin_self(client_cpu)
    server = start_redis(server_cpu)
    ours: list[float] = []
    theirs: list[float] = []
    rates: list[float] = []
    try:
        for _ in range(args.rounds):
            ours.append(statistics.median(python_sequential(server.url, args.count)))
            if node_ready():
                theirs.append(statistics.median(node_sequential(server.url, args.count, client_cpu)))
            rates.append(python_threads(server.url, args.count // 4 or 1, args.threads))
    finally:
        server.stop()
    print(f"placement {args.placement}, {args.count} round trips x {args.rounds} rounds")
    print(f"  bullmq_sync  add + wait_until_finished  median {statistics.median(ours):8.0f} us")
    if theirs:
        print(f"  Node BullMQ  add + waitUntilFinished    median {statistics.median(theirs):8.0f} us")
        print(f"  ratio ours/Node (latency, lower is better): "
              f"{statistics.median(ours) / statistics.median(theirs):.2f}")
    print(f"  bullmq_sync  {args.threads} threads on one QueueEvents: "
          f"{statistics.median(rates):8.0f} round trips/s")


if __name__ == "__main__":
    main()
