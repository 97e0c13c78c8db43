"""Batch scheduling of a worker's job threads (``Worker(batch_scheduling=True)``, the default).

The slot threads (the processor with them, and what it starts) and the reader of the
finishing socket run under Linux ``SCHED_BATCH``; the caller's threads, lock renewal and the
stall checker keep their policy; ``batch_scheduling=False`` changes nothing; a thread given
another policy keeps it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from helpers import wait_for

from bullmq_sync import InvalidArgument, Job, Queue, Worker
from bullmq_sync.worker_parts.scheduling import use_batch_scheduling

pytestmark = pytest.mark.skipif(
    not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux only"
)

SLOT = "bullmq-sync-worker-q-"


def policy_of(native_id: int = 0) -> int:
    return os.sched_getscheduler(native_id)


def run_probe(queue: Queue, redis_url: str, prefix: str, **options: Any) -> dict[str, Any]:
    """Two slots, two jobs: once the first has finished (which opens the finishing socket),
    the second's processor reports its own thread's policy, the policy of a process it
    starts, and the policy of every thread of this process (the other slot then waits for
    work, in the worker's code)."""
    seen: dict[str, Any] = {}

    def threads() -> dict[str, int]:
        return {t.name: policy_of(t.native_id or 0) for t in threading.enumerate()}

    def processor(job: Job) -> None:
        if job.name == "warm":
            return
        wait_for(lambda: "bullmq-sync-replies" in threads())
        seen["processor"] = policy_of()
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
            capture_output=True, text=True, check=True,
        )
        seen["child"] = int(child.stdout)
        seen["me"] = threading.current_thread().name
        if options.get("batch_scheduling", True):  # the other slot may still be starting
            wait_for(lambda: os.SCHED_BATCH in [
                p for name, p in threads().items() if name.startswith(SLOT) and name != seen["me"]
                and name[len(SLOT):].isdigit()
            ])
        seen["threads"] = threads()

    queue.add("warm", {})
    queue.add("probe", {})
    with Worker("q", processor, connection=redis_url, prefix=prefix, drain_delay=1,
                concurrency=2, **options):
        wait_for(lambda: "threads" in seen)
    return seen


def test_job_threads_run_under_batch_scheduling_and_the_others_do_not(
    queue: Queue, redis_url: str, prefix: str
) -> None:
    main_before = policy_of()
    seen = run_probe(queue, redis_url, prefix)
    assert seen["processor"] == os.SCHED_BATCH
    assert seen["child"] == os.SCHED_BATCH  # inherited, as any thread policy (documented)
    threads = seen["threads"]
    assert threads["bullmq-sync-replies"] == os.SCHED_BATCH
    slots = {name: p for name, p in threads.items()
             if name.startswith(SLOT) and name[len(SLOT):].isdigit()}
    assert len(slots) == 2 and set(slots.values()) == {os.SCHED_BATCH}
    others = {name: p for name, p in threads.items()
              if name not in slots and name != "bullmq-sync-replies"}
    assert {f"{SLOT}locks", f"{SLOT}stalled"} <= set(others)
    assert threading.current_thread().name in others
    assert set(others.values()) == {os.SCHED_OTHER}
    assert policy_of() == main_before == os.SCHED_OTHER


def test_batch_scheduling_false_leaves_every_thread_alone(
    queue: Queue, redis_url: str, prefix: str
) -> None:
    seen = run_probe(queue, redis_url, prefix, batch_scheduling=False)
    assert seen["processor"] == seen["child"] == os.SCHED_OTHER
    assert set(seen["threads"].values()) == {os.SCHED_OTHER}


def test_a_thread_given_another_policy_keeps_it() -> None:
    result: dict[str, Any] = {}

    def idle_thread() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        result["changed"] = use_batch_scheduling()
        result["policy"] = policy_of()

    def normal_thread() -> None:
        result["normal_changed"] = use_batch_scheduling()
        result["normal_policy"] = policy_of()
        result["again"] = use_batch_scheduling()  # already batch: left as it is

    for target in (idle_thread, normal_thread):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert result == {"changed": False, "policy": os.SCHED_IDLE, "normal_changed": True,
                      "normal_policy": os.SCHED_BATCH, "again": False}


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_batch_scheduling_must_be_a_bool(redis_url: str, prefix: str, value: Any) -> None:
    with pytest.raises(InvalidArgument, match="batch_scheduling must be True or False"):
        Worker("q", lambda job: None, connection=redis_url, prefix=prefix,
               batch_scheduling=value)


def test_child_processes_run_under_the_default_policy_even_when_replaced(
    queue: Queue, redis_url: str, prefix: str
) -> None:
    """processes=N: the first children are started by the caller, replacements by a slot
    thread (under SCHED_BATCH); every child runs under the default policy."""
    jobs = [queue.add("policy", {}) for _ in range(3)]
    with Worker("q", "worker_processors:policy", connection=redis_url, prefix=prefix,
                processes=1, max_jobs_per_child=1, drain_delay=1):
        wait_for(lambda: all(str(queue.get_job_state(j.id)) == "completed" for j in jobs),
                 timeout=60)
    values = [queue.get_job(j.id).return_value for j in jobs]  # type: ignore[union-attr]
    assert len({pid for pid, _ in values}) == 3  # a new child for each job
    assert [p for _, p in values] == [os.SCHED_OTHER] * 3
