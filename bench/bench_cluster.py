"""Throughput on a three-primary Redis Cluster against one server, side by side in one run.

    python bench/bench_cluster.py [--rounds 7] [--jobs 300]

Three hash-tagged queues (``{c0}``, ``{c1}``, ``{c2}``...) chosen so that on the cluster they
live on three different primaries; the same queue names are used on the single server. Both
deployments are private servers on loopback (never the machine's own Redis). Each round runs
every workload on both contenders, interleaved (single, cluster, then cluster, single on the
next round), one thread per queue:

* ``Job.retry``         one script call per job, ``--jobs`` fabricated failed jobs per queue;
* ``Queue.retry_jobs``  BullMQ's batched retry of the same number of failed jobs per queue;
* ``Queue.add_bulk``    ``--jobs`` jobs per queue in one call.

Jobs are fabricated untimed before each timed section. Prints the median jobs/s per contender
and the cluster/single ratio (>1 means the cluster is faster). On a 2-core machine the cluster's
three servers share the cores with the client, so read the ratio as "cost of routing", not as
scale-out.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "faults"))

import redis  # noqa: E402
from cluster_servers import LocalCluster  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402
from redis_server import LocalRedis, redis_server_binary  # noqa: E402

from bullmq_sync import Connection, Job, Queue  # noqa: E402


def fabricate(client: Any, prefix: str, queue: str, ids: list[str]) -> None:
    """Failed BullMQ jobs, written with one pipeline (grouped per node on a cluster)."""
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    base = f"{prefix}:{queue}:"
    for job_id in ids:
        pipe.hset(
            base + job_id,
            mapping={
                "name": "bench",
                "data": '{"n":1}',
                "opts": '{"attempts":1}',
                "timestamp": now,
                "delay": 0,
                "priority": 0,
                "processedOn": now,
                "finishedOn": now,
                "failedReason": "boom",
                "atm": 1,
                "ats": 1,
            },
        )
        pipe.zadd(base + "failed", {job_id: now})
    pipe.execute()


def spread_names(cluster: LocalCluster, prefix: str, count: int = 3) -> list[str]:
    """Hash-tagged queue names whose keys live on ``count`` different cluster primaries."""
    chosen: dict[int, str] = {}
    for i in range(1000):
        name = f"{{c{i}}}"
        chosen.setdefault(cluster.owner_of(f"{prefix}:{name}:wait").port, name)
        if len(chosen) == count:
            return list(chosen.values())
    raise SystemExit("could not spread three queues over the cluster")


def in_threads(work: list[Callable[[], None]]) -> float:
    """Run each callable in its own thread; the wall time of the slowest."""
    threads = [threading.Thread(target=w) for w in work]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


class Contender:
    def __init__(self, label: str, connection: Connection, raw: Any, names: list[str]) -> None:
        self.label = label
        self.connection = connection
        self.raw = raw
        self.names = names

    def fresh_queues(self) -> list[Queue]:
        prefix = f"b{uuid.uuid4().hex[:8]}"
        return [Queue(name, connection=self.connection, prefix=prefix) for name in self.names]

    def job_retry(self, jobs: int) -> float:
        queues = self.fresh_queues()
        ids = [str(i) for i in range(1, jobs + 1)]
        for queue in queues:
            fabricate(self.raw, queue.prefix, queue.name, ids)
        loaded = [[Job.from_id(queue, job_id) for job_id in ids] for queue in queues]

        def retry_all(batch: list[Job | None]) -> Callable[[], None]:
            def run() -> None:
                for job in batch:
                    job.retry()  # type: ignore[union-attr]

            return run

        return 3 * jobs / in_threads([retry_all(batch) for batch in loaded])

    def retry_jobs(self, jobs: int) -> float:
        queues = self.fresh_queues()
        ids = [str(i) for i in range(1, jobs + 1)]
        for queue in queues:
            fabricate(self.raw, queue.prefix, queue.name, ids)
        moved: list[int] = []
        elapsed = in_threads([lambda q=q: moved.append(q.retry_jobs(count=100)) for q in queues])
        assert sum(moved) == 3 * jobs, moved
        return 3 * jobs / elapsed

    def add_bulk(self, jobs: int) -> float:
        queues = self.fresh_queues()
        entries = [{"name": "bench", "data": {"n": i}} for i in range(jobs)]
        elapsed = in_threads([lambda q=q: q.add_bulk(entries) for q in queues])
        return 3 * jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=300, help="jobs per queue per round")
    options = parser.parse_args()

    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("no redis-server binary")
    single = LocalRedis(binary).start()
    cluster = LocalCluster(primaries=3).start()
    try:
        names = spread_names(cluster, "probe")
        # The slot depends only on the hash tag, so the names spread for any prefix.
        contenders = [
            Contender("single", Connection(single.url), redis.Redis(port=single.port), names),
            Contender(
                "cluster", Connection(cluster.url), RedisCluster.from_url(cluster.seed_url), names
            ),
        ]
        workloads: dict[str, Callable[[Contender, int], float]] = {}
        workloads["Job.retry"] = Contender.job_retry
        if hasattr(Queue, "retry_jobs"):
            workloads["Queue.retry_jobs"] = Contender.retry_jobs
        if hasattr(Queue, "add_bulk"):
            workloads["Queue.add_bulk"] = Contender.add_bulk
        results: dict[tuple[str, str], list[float]] = {}
        for contender in contenders:  # warm-up: pools, scripts, slot maps
            for run in workloads.values():
                run(contender, 20)
        for round_no in range(options.rounds):
            order = contenders if round_no % 2 == 0 else contenders[::-1]
            for workload, run in workloads.items():
                for contender in order:
                    results.setdefault((workload, contender.label), []).append(
                        run(contender, options.jobs)
                    )

        print(
            f"3 queues on 3 different primaries, {options.jobs} jobs per queue, "
            f"{options.rounds} rounds, one thread per queue; median jobs/s"
        )
        print(f"{'workload':<18}{'single':>12}{'cluster':>12}{'cluster/single':>16}")
        for workload in workloads:
            one = statistics.median(results[(workload, "single")])
            many = statistics.median(results[(workload, "cluster")])
            print(f"{workload:<18}{one:>12.0f}{many:>12.0f}{many / one:>16.2f}")
        for contender in contenders:
            contender.connection.close()
            contender.raw.close()
    finally:
        cluster.stop()
        single.stop()


if __name__ == "__main__":
    main()
