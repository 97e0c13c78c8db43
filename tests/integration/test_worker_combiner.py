"""Finishing calls of concurrent slots share one round trip (ScriptCombiner), and each caller
still gets its own reply or its own error."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import Queue, ScriptFailed, Worker


def test_many_slots_finish_every_job_once_in_fewer_round_trips(
    queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    queue.add_bulk([{"name": "n", "data": {"i": i}} for i in range(600)])
    seen: list[str] = []
    lock = threading.Lock()

    def record(job: Any, result: Any) -> None:
        with lock:
            seen.append(job.id)

    with Worker("q", lambda j: j.data["i"], connection=redis_url, prefix=prefix,
                concurrency=16, drain_delay=1, on_completed=record) as worker:
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 600, timeout=60)
        combiner = worker._finisher._finish_calls
    assert sorted(seen, key=int) == [str(i) for i in range(1, 601)]  # each once
    assert raw.llen(f"{prefix}:q:active") == 0
    assert combiner.calls >= 600 and combiner.batches < combiner.calls


def test_a_bad_call_in_a_batch_fails_alone(queue: Queue, raw: Any, redis_url: str,
                                           prefix: str) -> None:
    for i in range(9):
        queue.add("n", {"i": i})
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, autorun=False)
    fetcher, finisher = worker._fetcher, worker._finisher
    work = []
    for _ in range(9):
        token = fetcher.next_token()
        job = fetcher.job_from_reply(fetcher.fetch_once(token))
        assert job is not None
        work.append((job, token))
    calls = [finisher._finish_args(job, token, "completed", '"ok"', "", False)
             for job, token in work]
    keys, args = calls[8]
    calls[8] = (keys, (args[0], "not-a-number", *args[2:]))  # the ninth call: a Lua error
    combiner = finisher._finish_calls
    results: dict[int, Any] = {}
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = combiner.call(*calls[index])
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(results[8], ScriptFailed)
    assert all(results[i] == 0 for i in range(8)), results
    assert set(raw.zrange(f"{prefix}:q:completed", 0, -1)) == {job.id for job, _ in work[:8]}
    worker.close()


def test_a_lost_batch_is_replayed_call_by_call_without_double_effects(
    queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    """A batch that ran but whose replies were lost: sending each call again replays it."""
    for i in range(4):
        queue.add("n", {"i": i})
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, autorun=False)
    fetcher, finisher = worker._fetcher, worker._finisher
    calls = []
    for _ in range(4):
        token = fetcher.next_token()
        job = fetcher.job_from_reply(fetcher.fetch_once(token))
        assert job is not None
        calls.append(finisher._finish_args(job, token, "completed", '"ok"', "", False))
    first = worker.connection.run_script_many("finishJob", calls)
    events_before = raw.xlen(f"{prefix}:q:events")
    combiner = finisher._finish_calls
    replies = [combiner.call(keys, args) for keys, args in calls]
    assert replies == first == [0, 0, 0, 0]
    assert raw.xlen(f"{prefix}:q:events") == events_before  # nothing applied twice
    assert raw.zcard(f"{prefix}:q:completed") == 4
    worker.close()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_failures_and_retries_still_go_through_at_any_concurrency(
    concurrency: int, queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    queue.add_bulk([{"name": "n", "data": {"i": i}, "opts": {"attempts": 2}}
                    for i in range(40)])

    def flaky(job: Any) -> int:
        if job.attempts_made == 0 and job.data["i"] % 2:
            raise ValueError("odd")
        if job.data["i"] % 5 == 0:
            raise ValueError("never")
        return 1

    with Worker("q", flaky, connection=redis_url, prefix=prefix, concurrency=concurrency,
                drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") + raw.zcard(f"{prefix}:q:failed")
                 == 40, timeout=60)
    assert raw.zcard(f"{prefix}:q:failed") == 8
