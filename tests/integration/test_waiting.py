"""job.wait_until_finished: request/reply on a QueueEvents, many threads, races, bad input."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bullmq_sync import (
    ClientClosed,
    InvalidArgument,
    Job,
    JobFailed,
    JobNotFound,
    JobWaitTimeout,
    Queue,
    QueueEvents,
    Worker,
)


def processor(job: Job) -> Any:
    if job.data.get("fail"):
        raise RuntimeError(job.data["fail"])
    time.sleep(job.data.get("sleep", 0))
    return {"double": job.data["n"] * 2}


def test_returns_the_return_value_of_a_job_finished_later(redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        job = queue.add("x", {"n": 21, "sleep": 0.3})
        with Worker("q", processor, connection=redis_url, prefix=prefix):
            assert job.wait_until_finished(events, timeout=10) == {"double": 42}
        assert events.running  # started on demand, as Node's autorun QueueEvents is


def test_raises_the_failed_reason(redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        job = queue.add("x", {"fail": "card declined"})
        with Worker("q", processor, connection=redis_url, prefix=prefix):
            with pytest.raises(JobFailed) as caught:
                job.wait_until_finished(events, timeout=10)
    assert str(caught.value) == "card declined"
    assert caught.value.failed_reason == "card declined" and caught.value.job_id == job.id


def test_a_job_finished_before_the_call_answers_at_once(redis_url: str, prefix: str) -> None:
    """The race Node closes by reading the state after subscribing: the events were already
    dispatched (or never will be, for a QueueEvents created after the job finished)."""
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        done = queue.add("x", {"n": 1})
        failed = queue.add("x", {"fail": "nope"})
        with Worker("q", processor, connection=redis_url, prefix=prefix):
            deadline = time.monotonic() + 10
            while queue.get_job_counts("completed", "failed") != {"completed": 1, "failed": 1}:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with QueueEvents("q", connection=redis_url, prefix=prefix) as events:
            started = time.monotonic()
            assert done.wait_until_finished(events, timeout=5) == {"double": 2}
            with pytest.raises(JobFailed, match="nope"):
                failed.wait_until_finished(events, timeout=5)
            assert time.monotonic() - started < 2


def test_many_threads_wait_on_one_queue_events(redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        jobs = [queue.add("x", {"n": n, "fail": "odd" if n % 5 == 4 else None}) for n in range(60)]
        results: dict[str, Any] = {}
        lock = threading.Lock()

        def wait(job: Job) -> None:
            try:
                value: Any = job.wait_until_finished(events, timeout=30)
            except JobFailed as exc:
                value = ("failed", str(exc))
            with lock:
                results[job.id] = value

        threads = [threading.Thread(target=wait, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        with Worker("q", processor, connection=redis_url, prefix=prefix, concurrency=8):
            for thread in threads:
                thread.join(40)
    assert len(results) == 60
    for n, job in enumerate(jobs):
        expected = ("failed", "odd") if n % 5 == 4 else {"double": n * 2}
        assert results[job.id] == expected
    with events._state_lock:  # every waiter removed its listeners
        assert not any(events._listeners.values())


def test_timeout_raises_a_typed_error_and_removes_the_listeners(
    redis_url: str, prefix: str
) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        job = queue.add("slow", {"n": 1})
        started = time.monotonic()
        with pytest.raises(JobWaitTimeout) as caught:
            job.wait_until_finished(events, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 3
        assert "timed out before finishing" in str(caught.value) and "300ms" in str(caught.value)
        with pytest.raises(JobWaitTimeout, match="after 200ms"):
            job.waitUntilFinished(events, 200)
        with events._state_lock:
            assert not any(events._listeners.values())


def test_missing_job_and_closing_queue_events(redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        job = queue.add("x", {"n": 1})
        job.remove()
        with pytest.raises(JobNotFound, match="isFinished"):
            job.wait_until_finished(events, timeout=1)
        other = queue.add("x", {"n": 2})
        threading.Timer(0.3, events.close).start()
        with pytest.raises(ClientClosed):
            other.wait_until_finished(events)


def test_bad_input_is_refused_before_anything_is_sent(
    redis_url: str, prefix: str, raw: Any
) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events, QueueEvents("other", connection=redis_url, prefix=prefix) as elsewhere:
        job = queue.add("x", {"n": 1})
        before = {key: raw.type(key) for key in raw.keys(f"{prefix}:*")}
        with pytest.raises(InvalidArgument, match="QueueEvents"):
            job.wait_until_finished(queue, timeout=1)
        with pytest.raises(InvalidArgument, match="watches"):
            job.wait_until_finished(elsewhere, timeout=1)
        for bad in (-1, "5", True):
            with pytest.raises(InvalidArgument):
                job.wait_until_finished(events, timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            job.waitUntilFinished(events, -5)
        assert not events.running  # nothing started, nothing subscribed
        assert {key: raw.type(key) for key in raw.keys(f"{prefix}:*")} == before


def test_a_failed_attempt_that_will_be_retried_is_not_the_outcome(
    redis_url: str, prefix: str
) -> None:
    def flaky(job: Job) -> str:
        if job.attempts_made == 0:
            raise RuntimeError("first try fails")
        return "second try"

    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix
    ) as events:
        job = queue.add("x", {}, {"attempts": 2})
        with Worker("q", flaky, connection=redis_url, prefix=prefix):
            assert job.wait_until_finished(events, timeout=10) == "second try"


def test_a_queue_events_being_iterated_is_refused(redis_url: str, prefix: str) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue, QueueEvents(
        "q", connection=redis_url, prefix=prefix, block_ms=100
    ) as events:
        job = queue.add("x", {"n": 1})
        reading = threading.Event()

        def read() -> None:
            for _ in events.iter(block=True, timeout=2):
                reading.set()

        thread = threading.Thread(target=read)
        thread.start()
        deadline = time.monotonic() + 2
        while not events._read_lock.locked() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(InvalidArgument, match="iter"):
            job.wait_until_finished(events, timeout=1)
        thread.join(5)


def test_a_job_removed_as_it_finished_is_answered_from_its_event(
    redis_url: str, prefix: str
) -> None:
    """removeOnComplete with a fast worker: the hash is gone before the caller looks (Node
    rejects with "Missing key for job" here); the completed/failed event still answers."""
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        done = queue.add("x", {"n": 5}, {"removeOnComplete": True})
        failed = queue.add("x", {"fail": "gone too"}, {"removeOnFail": True})
        with Worker("q", processor, connection=redis_url, prefix=prefix):
            deadline = time.monotonic() + 10
            while queue.get_job(done.id) or queue.get_job(failed.id):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        with QueueEvents("q", connection=redis_url, prefix=prefix) as events:
            assert done.wait_until_finished(events, timeout=5) == {"double": 10}
            with pytest.raises(JobFailed, match="gone too"):
                failed.wait_until_finished(events, timeout=5)


def test_many_waiters_starting_the_queue_events_at_once_start_one_reader(
    redis_url: str, prefix: str
) -> None:
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        def readers() -> int:
            return sum(t.name == "bullmq-sync-events-q" for t in threading.enumerate())

        for _ in range(5):  # repeated: the race needs the threads to collide
            before = readers()
            with QueueEvents("q", connection=redis_url, prefix=prefix) as events:
                jobs = [queue.add("x", {"n": n}) for n in range(8)]
                barrier = threading.Barrier(8)
                errors: list[BaseException] = []

                def wait(job: Job, barrier: threading.Barrier, errors: list[BaseException]) -> None:
                    barrier.wait()
                    try:
                        job.wait_until_finished(events, timeout=0.2)
                    except JobWaitTimeout:
                        pass
                    except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                        errors.append(exc)

                threads = [
                    threading.Thread(target=wait, args=(job, barrier, errors)) for job in jobs
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(10)
                assert errors == [] and readers() - before == 1
