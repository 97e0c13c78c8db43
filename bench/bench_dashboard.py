"""Dashboard server time against Bull Board's own API, same data, same run.

    npm ci --prefix bench        # Bull Board + express + BullMQ, pinned
    python bench/bench_dashboard.py [--rounds 30] [--placement split]

On one private, pinned redis-server: 50 queues (prefix ``ov``, a few jobs of each state) and
a queue with 100,000 failed jobs next to one with 1,000 (prefix ``big``). Contenders, both
over HTTP on loopback with keep-alive, interleaved request by request:

* bullmq-sync: ``bullmq-sync dashboard`` (waitress, 16 threads), full server-rendered HTML.
* Bull Board 9.10 (``@bull-board/api`` + ``@bull-board/express``): its JSON API, which is the
  whole of its server work (its UI renders in the browser).

Pages: the overview of 50 queues (``/`` vs ``/api/queues``), and failed jobs page 1 and page
1000 (50 per page) of the 100k queue and page 1 of the 1k queue. Prints medians (ms), the
ratio ours/Bull Board, and Redis commands per page (INFO commandstats deltas).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import time

import redis

from common import ROOT, add_placement_option, cpus, percentile, pin_self, start_redis, taskset

BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "tests"))
from dashboard_support import fill_failed, free_port  # noqa: E402

OVERVIEW_QUEUES = 50
BIG = 100_000
SMALL = 1_000


def seed(client: redis.Redis) -> None:
    now = int(time.time() * 1000)
    for q in range(OVERVIEW_QUEUES):
        name = f"queue-{q:02d}"
        pipe = client.pipeline(transaction=False)
        for i in range(1, 31):
            key = f"ov:{name}:{i}"
            pipe.hset(key, mapping={"name": "work", "data": json.dumps({"i": i}), "opts": "{}",
                                    "timestamp": now, "delay": 0, "priority": 0, "atm": 1})
            if i <= 10:
                pipe.hset(key, mapping={"finishedOn": now, "failedReason": "boom"})
                pipe.zadd(f"ov:{name}:failed", {str(i): now + i})
            elif i <= 20:
                pipe.hset(key, mapping={"finishedOn": now, "returnvalue": "1"})
                pipe.zadd(f"ov:{name}:completed", {str(i): now + i})
            else:
                pipe.lpush(f"ov:{name}:wait", str(i))
        pipe.set(f"ov:{name}:id", 30)
        pipe.hset(f"ov:{name}:meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:6.7.0"})
        pipe.execute()
    fill_failed(client, "big", "huge", BIG)
    fill_failed(client, "big", "small", SMALL)


def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"server exited: {process.args}")
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {port}")


def ours(url: str, prefix: str, cpu: int | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [*taskset(cpu), sys.executable, "-m", "bullmq_sync", "dashboard", "--url", url,
         "--prefix", prefix, "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, process)
    return process, port


def bull_board(url: str, cpu: int | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    overview = "ov:" + ",".join(f"queue-{q:02d}" for q in range(OVERVIEW_QUEUES))
    process = subprocess.Popen(
        [*taskset(cpu), "node", str(BENCH / "node_board.js"), url, str(port), overview,
         "big:huge,small"],
        cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("Bull Board did not start")
    return process, port


class Getter:
    """One keep-alive HTTP connection; ``get(path)`` returns (ms, status, body length)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        return (time.perf_counter() - started) * 1000, response.status, len(body)


def commands(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    add_placement_option(parser)
    args = parser.parse_args()
    if not shutil.which("node") or not (BENCH / "node_modules" / "@bull-board" / "api").is_dir():
        print("!" * 78, file=sys.stderr)
        print("!! NODE OR BULL BOARD MISSING: no comparison possible.", file=sys.stderr)
        print("!! Install node and run `npm ci --prefix bench`, then run this again.", file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        raise SystemExit(2)

    server_cpu, client_cpu = cpus(args.placement)
    server = start_redis(server_cpu)
    processes: list[subprocess.Popen] = []
    try:
        client = redis.Redis.from_url(server.url)
        started = time.perf_counter()
        seed(client)
        print(f"seeded {OVERVIEW_QUEUES} queues + {BIG:,} + {SMALL:,} failed jobs "
              f"in {time.perf_counter() - started:.1f} s")
        ov_process, ov_port = ours(server.url, "ov", client_cpu)
        big_process, big_port = ours(server.url, "big", client_cpu)
        bb_process, bb_port = bull_board(server.url, client_cpu)
        processes += [ov_process, big_process, bb_process]
        pin_self(client_cpu)

        pages = [
            ("overview, 50 queues", ov_port, "/", "/b0/api/queues"),
            ("failed p1, 100k jobs", big_port, "/queue?name=huge&state=failed&page=1&per=50",
             "/b1/api/queues?activeQueue=huge&status=failed&page=1&jobsPerPage=50"),
            ("failed p1000, 100k jobs", big_port, "/queue?name=huge&state=failed&page=1000&per=50",
             "/b1/api/queues?activeQueue=huge&status=failed&page=1000&jobsPerPage=50"),
            ("failed p1, 1k jobs", big_port, "/queue?name=small&state=failed&page=1&per=50",
             "/b1/api/queues?activeQueue=small&status=failed&page=1&jobsPerPage=50"),
        ]
        getters = {port: Getter(port) for port in (ov_port, big_port)}
        board = Getter(bb_port)
        results = []
        for label, port, path, bb_path in pages:
            mine, theirs = getters[port], board
            for _ in range(3):  # warm up: caches, script loads, JIT
                mine.get(path)
                theirs.get(bb_path)
            ours_ms: list[float] = []
            bb_ms: list[float] = []
            ours_cmds: list[int] = []
            bb_cmds: list[int] = []
            for _ in range(args.rounds):
                before = commands(client)
                ms, status, _ = mine.get(path)
                ours_cmds.append(commands(client) - before - 1)
                assert status == 200, (path, status)
                ours_ms.append(ms)
                before = commands(client)
                ms, status, _ = theirs.get(bb_path)
                bb_cmds.append(commands(client) - before - 1)
                assert status == 200, (bb_path, status)
                bb_ms.append(ms)
            results.append((label, ours_ms, bb_ms, statistics.median(ours_cmds), statistics.median(bb_cmds)))

        print(f"\nserver time per page (ms, median of {args.rounds}, interleaved; "
              f"placement {args.placement})")
        print(f"{'page':26} {'bullmq-sync':>12} {'p90':>7} {'Bull Board':>11} {'p90':>7} "
              f"{'ratio':>6} {'cmds ours':>9} {'cmds BB':>8}")
        for label, mine_ms, bb_ms, mine_cmds, bb_cmds in results:
            a, b = statistics.median(mine_ms), statistics.median(bb_ms)
            print(f"{label:26} {a:12.2f} {percentile(mine_ms, 0.9):7.2f} {b:11.2f} "
                  f"{percentile(bb_ms, 0.9):7.2f} {a / b:5.2f}x {mine_cmds:9.0f} {bb_cmds:8.0f}")
        big1 = statistics.median(results[1][1])
        small1 = statistics.median(results[3][1])
        deep = statistics.median(results[2][1])
        print(f"\nflatness (ours): page 1 of 100k / page 1 of 1k = {big1 / small1:.2f}x; "
              f"page 1000 / page 1 of 100k = {deep / big1:.2f}x")
        # the overview's queue discovery (SCAN, cached 10 s) on its own
        scan_ms = [getters[ov_port].get("/?refresh=1")[0] for _ in range(5)]
        print(f"overview with a fresh SCAN of the keyspace: {statistics.median(scan_ms):.2f} ms "
              f"(median of 5; cached for 10 s after)")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()


if __name__ == "__main__":
    main()
