"""The Worker in BullMQ 6.7's shapes: autorun, close(force), every WorkerOptions key, events,
and cancelling running jobs."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from jobfactory import put_job, snapshot

from bullmq_sync import InvalidArgument, Queue, UnrecoverableError, Worker
from bullmq_sync.worker import CancelSignal, JobCancelled
from bullmq_sync.worker_parts import settings as worker_settings

INTERFACES = (
    Path(__file__).resolve().parents[1] / "interop/node_modules/bullmq/dist/esm/interfaces"
)


def _interface_keys(text: str, name: str) -> tuple[set[str], list[str]]:
    """Keys of one ``export interface`` in a .d.ts file, and the interfaces it extends."""
    match = re.search(rf"export interface {name}\b[^{{]*?(?:extends ([^{{]+))?{{", text)
    assert match, name
    bases = [re.sub(r"<.*", "", b).strip() for b in re.split(r",\s*(?![^<]*>)", match[1] or "")]
    depth, keys = 1, set()
    for line in text[match.end():].splitlines():
        if depth == 1:
            key = re.match(r"\s+(\w+)\??:", line)
            if key:
                keys.add(key[1])
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            break
    return keys, [b for b in bases if b]


def node_worker_option_keys() -> set[str]:
    sources = {
        "WorkerOptions": "worker-options.d.ts",
        "QueueBaseOptions": "queue-options.d.ts",
        "KeyPrefixOptions": "queue-options.d.ts",
        "SandboxedOptions": "sandboxed-options.d.ts",
    }
    keys: set[str] = set()
    pending = ["WorkerOptions"]
    while pending:
        name = pending.pop()
        found, bases = _interface_keys((INTERFACES / sources[name]).read_text(), name)
        keys |= found
        pending += bases
    return keys


def test_every_node_worker_option_is_mapped_or_refused_with_a_reason() -> None:
    keys = node_worker_option_keys()
    assert {"lockRenewTime", "skipStalledCheck", "useWorkerThreads", "connection"} <= keys
    handled = (
        set(worker_settings.OPTION_NAMES)
        | set(worker_settings.ACCEPTED_AS_IS)
        | set(worker_settings.REFUSED)
        | {"settings"}
    )
    assert keys - handled == set()


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"lockRenewTme": 1}, ["'lockRenewTme'", "lockRenewTime"]),
        ({"useWorkerThreads": True}, ["useWorkerThreads", "processes=N"]),
        ({"workerForkOptions": {}}, ["workerForkOptions"]),
        ({"telemetry": {}}, ["telemetry"]),
        ({"blockingConnection": False}, ["blockingConnection"]),
        ({"settings": {"repeatStrategy": None}}, ["repeatStrategy"]),
        ({"settings": {"backofStrategy": None}}, ["backofStrategy", "backoffStrategy"]),
        ({"limiter": {"max": 1, "duration": 10, "groupKey": "x"}}, ["groupKey"]),
        ({"lockRenewTime": 0}, ["lock_renew_time"]),
        ({"skipStalledCheck": "yes"}, ["skip_stalled_check"]),
        ({"autorun": 1}, ["autorun"]),
        ({"removeOnComplete": {"count": 1, "ages": 3}}, ["ages"]),
    ],
)
def test_bad_or_unknown_options_are_refused_naming_the_key(
    opts: dict[str, Any], words: list[str], raw: Any, prefix: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Worker("q", lambda j: None, {**opts, "prefix": prefix, "connection": "redis://127.0.0.1:1"})
    for word in words:
        assert word in str(caught.value)
    assert snapshot(raw, prefix) == {}


def test_node_options_map_to_settings(redis_url: str, prefix: str) -> None:
    strategy = lambda attempts, kind, error, job: 10  # noqa: E731
    worker = Worker(
        "q",
        lambda j: None,
        {
            "connection": redis_url,
            "prefix": prefix,
            "autorun": False,
            "lockDuration": 4000,
            "lockRenewTime": 700,
            "skipStalledCheck": True,
            "skipLockRenewal": True,
            "maximumRateLimitDelay": 500,
            "runRetryDelay": 50,
            "useWorkerThreads": False,
            "skipVersionCheck": True,
            "blockingConnection": True,
            "settings": {"backoffStrategy": strategy},
        },
    )
    s = worker.settings
    assert (s.lock_duration, s.lock_renew_time, s.renew_every_ms) == (4000, 700, 700)
    assert (s.skip_stalled_check, s.skip_lock_renewal, s.autorun) == (True, True, False)
    assert (s.maximum_rate_limit_delay, s.run_retry_delay) == (500, 50)
    assert worker.backoff_strategy is strategy
    assert not worker.running
    worker.close()


# -- autorun ---------------------------------------------------------------------------------


def test_a_worker_starts_by_default_and_not_with_autorun_false(
    queue: Queue, redis_url: str, prefix: str
) -> None:
    job = queue.add("work", {})
    idle = Worker("q", lambda j: "never", connection=redis_url, prefix=prefix, autorun=False)
    time.sleep(0.3)
    assert queue.get_job(job.id).get_state() == "waiting"
    idle.close()
    worker = Worker("q", lambda j: "ran", connection=redis_url, prefix=prefix, drain_delay=1)
    try:
        wait_for(lambda: queue.get_job(job.id).get_state() == "completed")
        assert worker.running and worker.start() is worker  # start on a running worker: no-op
    finally:
        worker.close()


def test_run_twice_at_once_raises_already_running(redis_url: str, prefix: str) -> None:
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, drain_delay=1)
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        wait_for(lambda: worker._running_blocked)
        with pytest.raises(InvalidArgument, match="Worker is already running"):
            worker.run()
    finally:
        worker.close()
        runner.join(5)
    assert not runner.is_alive()
    with pytest.raises(InvalidArgument, match="closed worker"):
        worker.start()


# -- close(force) ----------------------------------------------------------------------------


def test_close_force_does_not_wait_for_active_jobs(
    queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(job: Any) -> str:
        started.set()
        release.wait(10)
        return "late"

    job = queue.add("slow", {})
    worker = Worker("q", slow, connection=redis_url, prefix=prefix, drain_delay=1,
                    lock_duration=5000)
    assert started.wait(5)
    t0 = time.monotonic()
    assert worker.close(True) is True
    assert time.monotonic() - t0 < 1.0
    release.set()
    time.sleep(0.3)
    # Not finished by the closed worker: still active, locked until the lock expires.
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == [job.id]
    assert raw.hget(f"{prefix}:q:{job.id}", "returnvalue") is None
    assert raw.pttl(f"{prefix}:q:{job.id}:lock") > 0


def test_close_graceful_waits_and_a_number_is_not_force(
    queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    job = queue.add("slow", {})
    worker = Worker("q", lambda j: time.sleep(0.5) or "done", connection=redis_url,
                    prefix=prefix, drain_delay=1)
    with pytest.raises(InvalidArgument, match="timeout="):
        worker.close(1)  # type: ignore[arg-type]
    wait_for(lambda: raw.lrange(f"{prefix}:q:active", 0, -1) == [job.id])
    assert worker.close() is True
    assert raw.hget(f"{prefix}:q:{job.id}", "returnvalue") == '"done"'


# -- events ----------------------------------------------------------------------------------


def test_events_drained_progress_closing_closed_ready(
    queue: Queue, redis_url: str, prefix: str
) -> None:
    seen: list[tuple[Any, ...]] = []

    def proc(job: Any) -> int:
        job.update_progress(42)
        return 1

    queue.add("a", {})
    queue.add("b", {})
    worker = Worker("q", proc, connection=redis_url, prefix=prefix, drain_delay=1, autorun=False)
    for name in ("ready", "drained", "progress", "closing", "closed", "completed"):
        worker.on(name, lambda *args, name=name: seen.append((name, *args)))
    worker.start()
    wait_for(lambda: any(e[0] == "drained" for e in seen))
    worker.close()
    names = [e[0] for e in seen]
    assert names[0] == "ready"
    assert names.count("progress") == 2 and names.count("completed") == 2
    progress = [e for e in seen if e[0] == "progress"]
    assert all(e[2] == 42 and e[1].progress == 42 for e in progress)
    assert names.count("drained") == 1  # once per run dry, as Node
    assert names[-2:] == ["closing", "closed"]
    assert ("closing", "closing queue") in seen


def test_drained_again_after_new_work(queue: Queue, redis_url: str, prefix: str) -> None:
    drained: list[float] = []
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, drain_delay=1,
                    autorun=False)
    worker.on("drained", lambda: drained.append(time.time()))
    worker.start()
    try:
        wait_for(lambda: len(drained) == 1)
        queue.add("x", {})
        wait_for(lambda: len(drained) == 2)
    finally:
        worker.close()


def test_unknown_event_refused(redis_url: str, prefix: str) -> None:
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, autorun=False)
    with pytest.raises(InvalidArgument, match="drained"):
        worker.on("drain", lambda: None)
    worker.close()


# -- skipStalledCheck, skipLockRenewal, lockRenewTime ---------------------------------------


def test_skip_stalled_check_leaves_a_stalled_job(raw: Any, redis_url: str, prefix: str) -> None:
    put_job(raw, prefix, "q", "s1", state="active", extra={"opts": "{}"})
    raw.delete(f"{prefix}:q:s1:lock")  # its worker died
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, drain_delay=0.2,
                    stalled_interval=100, skip_stalled_check=True)
    time.sleep(0.6)
    worker.close()
    assert raw.lrange(f"{prefix}:q:active", 0, -1) == ["s1"]
    checked = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, drain_delay=0.2,
                     stalled_interval=100)
    try:
        wait_for(lambda: raw.lrange(f"{prefix}:q:active", 0, -1) == [])
    finally:
        checked.close()


def test_skip_lock_renewal_lets_the_lock_expire(queue: Queue, raw: Any, redis_url: str,
                                                prefix: str) -> None:
    ttls: list[int] = []

    def slow(job: Any) -> None:
        time.sleep(0.8)
        ttls.append(raw.pttl(f"{prefix}:q:{job.id}:lock"))

    queue.add("x", {})
    with Worker("q", slow, connection=redis_url, prefix=prefix, drain_delay=1,
                lock_duration=500, skip_lock_renewal=True):
        wait_for(lambda: ttls)
    assert ttls[0] == -2  # expired: nothing renewed it


def test_lock_renew_time_sets_the_renewal_period(queue: Queue, raw: Any, redis_url: str,
                                                 prefix: str) -> None:
    renewals: list[dict[str, Any]] = []
    done = threading.Event()
    queue.add("x", {})
    worker = Worker("q", lambda j: done.wait(1.2), connection=redis_url, prefix=prefix,
                    drain_delay=1, lock_duration=10000, lock_renew_time=200, autorun=False)
    worker.on("locksRenewed", renewals.append)
    worker.start()
    try:
        wait_for(lambda: len(renewals) >= 3, timeout=5)
    finally:
        done.set()
        worker.close()
    assert renewals[0]["count"] == 1 and len(renewals[0]["jobIds"]) == 1


# -- cancel_job / cancel_all_jobs -------------------------------------------------------------


def _cancellable(started: list[str]) -> Any:
    def proc(job: Any, token: str, signal: CancelSignal) -> str:
        started.append(token)
        signal.wait(10)
        signal.raise_if_cancelled()
        return "finished"

    return proc


def test_cancel_job_fails_the_attempt_with_the_reason(queue: Queue, raw: Any, redis_url: str,
                                                      prefix: str) -> None:
    started: list[str] = []
    job = queue.add("long", {}, {"attempts": 2, "backoff": 0})
    worker = Worker("q", _cancellable(started), connection=redis_url, prefix=prefix,
                    drain_delay=1, autorun=False)
    failures: list[BaseException] = []
    worker.on("failed", lambda j, e: failures.append(e))
    worker.start()
    try:
        wait_for(lambda: len(started) == 1)
        assert worker.cancel_job("nope", "x") is False
        assert worker.cancel_job(job.id, "user asked") is True
        # Attempts apply as for any error: the second attempt runs, then a cancelAllJobs.
        wait_for(lambda: len(failures) == 1 and len(started) == 2)
        worker.cancelAllJobs("shutting down")
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    finally:
        worker.close()
    assert isinstance(failures[0], JobCancelled) and str(failures[0]) == "user asked"
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert (fields["failedReason"], fields["atm"]) == ("shutting down", "2")


def test_cancel_with_unrecoverable_fails_at_once_and_keyword_signal(
    queue: Queue, raw: Any, redis_url: str, prefix: str
) -> None:
    started = threading.Event()

    def proc(job: Any, *, signal: CancelSignal) -> None:
        started.set()
        if signal.wait(10):
            raise UnrecoverableError(f"cancelled: {signal.reason}")

    job = queue.add("long", {}, {"attempts": 5})
    with Worker("q", proc, connection=redis_url, prefix=prefix, drain_delay=1) as worker:
        assert started.wait(5)
        assert worker.cancelJob(job.id) is True
        wait_for(lambda: raw.zcard(f"{prefix}:q:failed") == 1)
    fields = raw.hgetall(f"{prefix}:q:{job.id}")
    assert (fields["failedReason"], fields["atm"]) == ("cancelled: None", "1")


def test_cancel_job_bad_reason_refused(redis_url: str, prefix: str) -> None:
    worker = Worker("q", lambda j: None, connection=redis_url, prefix=prefix, autorun=False)
    with pytest.raises(InvalidArgument):
        worker.cancel_job("1", reason=3)  # type: ignore[arg-type]
    worker.close()


def test_cancel_signal_is_thread_safe_and_keeps_the_first_reason() -> None:
    signal = CancelSignal()
    results: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: results.append(signal.cancel(f"r{i}")))
               for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and signal.cancelled and signal.aborted
    assert signal.reason is not None and signal.reason.startswith("r")
    with pytest.raises(JobCancelled):
        signal.throwIfAborted()
