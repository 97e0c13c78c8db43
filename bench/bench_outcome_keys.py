"""What exactly-once costs in Redis: outcome keys held at steady state under a mixed load.

    python bench/bench_outcome_keys.py [--rate 1000] [--seconds 20] [--before 15854dd]

A steady load runs for ``--seconds``: one thread adds single jobs at ``--rate`` per second
(``queue.add``, as a web app does) while a Worker (concurrency 8) processes them (no-op).
At the end it counts the queue's outcome keys (SCAN) and the outcomes they hold (a key of
its own holds one; a shared hash one per field) and sums their ``MEMORY USAGE``. Outcomes held
at steady state = outcomes stored per job x rate x TTL (a run shorter than the TTL loses none,
so it measures the outcomes stored per job exactly); keys and bytes scale with them.

Contenders, each in a fresh process on a fresh private redis-server (never the machine's own),
with BullMQ's default prefix and a queue named "emails" (key names, hence bytes, as in a real
deployment), with two keep policies (keep all, BullMQ's default; and removeOnComplete 1000):
- "before": the package as of git revision ``--before`` (exported with ``git archive``),
  when every transition kept a 10-minute key;
- "now": this tree, with its default connection (TTL from the retry policy);
- "now, short TTL": this tree with a 0.5 s retry budget and timeouts, run long enough for
  keys to expire, so the observed plateau checks the steady-state formula.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, start_redis

ISSUE_KEYS, ISSUE_MB = 600_000, 65.0  # the issue's figure for 1,000 transitions/s


def child(url: str, rate: int, seconds: float, keep: str, short: bool) -> None:
    """Run the load with whichever bullmq_sync this process imports; print one JSON line."""
    import redis

    from bullmq_sync import Connection, Queue, Worker
    from bullmq_sync.keys import OP_SEGMENT

    prefix, name = "bull", "emails"
    raw = redis.Redis.from_url(url, decode_responses=True)
    timeouts = dict(retry_budget=0.5, socket_timeout=0.5, socket_connect_timeout=0.5,
                    pool_timeout=0.5) if short else {}
    connection = Connection(url, **timeouts)
    pattern = f"{prefix}:{name}:{OP_SEGMENT}*"
    remove = None if keep == "all" else 1000
    processed = [0]
    lock = threading.Lock()

    def work(job: object) -> None:
        with lock:
            processed[0] += 1

    def census(sizes: bool = False) -> dict:
        """Outcome keys, the outcomes they hold (a hash holds many), and optionally bytes."""
        plain = list(raw.scan_iter(match=pattern, count=5000, _type="string"))
        shared = list(raw.scan_iter(match=pattern, count=5000, _type="hash"))
        pipe = raw.pipeline(transaction=False)
        for key in shared:
            pipe.hlen(key)
        held = sum(n or 0 for n in pipe.execute()) + len(plain)
        found = {"keys": len(plain) + len(shared), "outcomes": held}
        if sizes:
            pipe = raw.pipeline(transaction=False)
            for key in plain + shared:
                pipe.memory_usage(key, samples=0)
            found["bytes"] = sum(n or 0 for n in pipe.execute())
        return found

    added = 0
    samples: list[tuple[float, int]] = []
    with Queue(name, connection=connection, prefix=prefix) as queue, \
            Worker(name, work, connection=connection, prefix=prefix, concurrency=8, drain_delay=1,
                   remove_on_complete=remove):
        start = time.monotonic()
        next_sample = start + 1
        while (now := time.monotonic()) < start + seconds:
            due = start + added / rate
            if now < due:
                time.sleep(min(due - now, max(0.0, next_sample - now)))
            else:
                queue.add("noop", {"i": added})
                added += 1
            if short and time.monotonic() >= next_sample:
                samples.append((round(time.monotonic() - start, 1), census()["outcomes"]))
                next_sample += 1
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 30
        while processed[0] < added and time.monotonic() < deadline:
            time.sleep(0.01)
    end = census(sizes=True)
    print(json.dumps({
        "added": added, "processed": processed[0], "seconds": elapsed,
        "keys_at_end": end["keys"], "outcomes_at_end": end["outcomes"],
        "bytes_per_outcome": end["bytes"] / max(end["outcomes"], 1),
        "configured_ttl_ms": _ttl_of(connection), "samples": samples,
    }))
    connection.close()


def _ttl_of(connection: object) -> int:
    """The connection's outcome TTL (ms); 600000 for a package that predates the setting."""
    return int(getattr(connection, "outcome_ttl_ms", 600_000))


def run(tree: Path, rate: int, seconds: float, keep: str, short: bool) -> dict:
    server = start_redis(None)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", server.url,
               "--rate", str(rate), "--seconds", str(seconds), "--keep", keep]
    env = dict(os.environ, BULLMQ_SYNC_TREE=str(tree))
    try:
        done = subprocess.run(command + (["--short"] if short else []), cwd=tree, env=env,
                              capture_output=True, text=True, check=False)
    finally:
        server.stop()
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def steady(result: dict, rate: int) -> tuple[float, float, float]:
    """(outcomes, keys, MB) held at steady state at ``rate`` jobs/s: per job x rate x TTL."""
    per_job = result["outcomes_at_end"] / max(result["added"], 1)
    outcomes = per_job * rate * result["configured_ttl_ms"] / 1000
    keys = outcomes * result["keys_at_end"] / max(result["outcomes_at_end"], 1)
    return outcomes, keys, outcomes * result["bytes_per_outcome"] / 1e6


def export(revision: str) -> Path | None:
    target = Path(tempfile.mkdtemp(prefix="bqs-before-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "bullmq_sync", "lua"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"(no revision {revision!r}: the 'before' column is skipped)")
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="jobs added (and processed) per s")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--before", default="15854dd",
                        help="git revision of the ten-minute design ('' = skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--keep", default="all", help=argparse.SUPPRESS)
    parser.add_argument("--short", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rate, args.seconds, args.keep, args.short)
        return
    before = export(args.before) if args.before else None
    rows = []
    for keep in ("all", "1000"):
        contenders = ([("before", before)] if before else []) + [("now", ROOT)]
        for label, tree in contenders:
            rows.append((label, keep, run(tree, args.rate, args.seconds, keep, False)))
    short_run = run(ROOT, args.rate, max(args.seconds, 20.0), "all", True)
    print(f"\nCall outcomes held at steady state, {args.rate} jobs/s added and processed "
          f"({args.seconds:.0f} s of load per row)")
    print(f"{'design':8} {'keep':>10} {'jobs/s':>7} {'stored/job':>10} {'B/stored':>8} "
          f"{'TTL s':>6} {'outcomes':>10} {'keys':>10} {'MB':>7}")
    figures: dict[tuple[str, str], tuple[float, float, float]] = {}
    for label, keep, result in rows:
        figures[(label, keep)] = held = steady(result, args.rate)
        print(f"{label:8} {('all' if keep == 'all' else 'count ' + keep):>10} "
              f"{result['added'] / result['seconds']:7.0f} "
              f"{result['outcomes_at_end'] / max(result['added'], 1):10.3f} "
              f"{result['bytes_per_outcome']:8.1f} {result['configured_ttl_ms'] / 1000:6.1f} "
              f"{held[0]:10,.0f} {held[1]:10,.0f} {held[2]:7.2f}")
    for keep in ("all", "1000"):
        if ("before", keep) in figures:
            old, new = figures[("before", keep)], figures[("now", keep)]
            print(f"now / before, keep {keep}: outcomes 1/{old[0] / max(new[0], 1):.1f}, "
                  f"keys 1/{old[1] / max(new[1], 1):.1f}, bytes 1/{old[2] / max(new[2], 1e-9):.1f}")
    new = figures[("now", "all")]
    print(f"now (keep all) vs the issue's {ISSUE_KEYS:,} keys / {ISSUE_MB:.0f} MB: "
          f"keys 1/{ISSUE_KEYS / max(new[1], 1):.0f}, bytes 1/{ISSUE_MB / max(new[2], 1e-9):.0f}")
    now_all = next(result for label, keep, result in rows if (label, keep) == ("now", "all"))
    ttl_s = short_run["configured_ttl_ms"] / 1000
    plateau = [n for t, n in short_run["samples"] if t > ttl_s + 2]
    predicted = (now_all["outcomes_at_end"] / max(now_all["added"], 1)
                 * short_run["added"] / short_run["seconds"] * ttl_s)
    print(f"check with a {ttl_s:.2f} s TTL: observed plateau (median of {len(plateau)} "
          f"samples) {statistics.median(plateau) if plateau else 0:,.0f} outcomes held, "
          f"formula {predicted:,.0f}")


if __name__ == "__main__":
    main()
