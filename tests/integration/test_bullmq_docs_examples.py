"""BullMQ's own Python documentation examples, with ``await`` removed and the import changed.

The texts below follow docs.bullmq.io/python (introduction, usage, retrying jobs); each runs
against a private Redis standing in for the default localhost:6379.
"""

from __future__ import annotations

import time

import pytest

import bullmq_sync.connection


@pytest.fixture
def default_redis(local_redis, monkeypatch):
    monkeypatch.setattr(bullmq_sync.connection, "DEFAULT_URL", local_redis.url)
    return local_redis


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_introduction_queue_and_worker(default_redis):
    from bullmq_sync import Queue, Worker

    queue = Queue("myQueue")
    # Add a job with data { "foo": "bar" } to the queue
    queue.add("myJob", {"foo": "bar"})

    seen = []

    def process(job, job_token):
        # job.data will include the data added to the queue
        seen.append((job.data, job_token))
        return "some value"

    worker = Worker("myQueue", process, {"connection": default_redis.url})
    wait_until(lambda: seen)
    worker.close()
    queue.close()
    assert seen[0][0] == {"foo": "bar"} and seen[0][1]


def test_usage_adding_jobs(default_redis):
    from bullmq_sync import Queue

    queue = Queue("emailQueue")
    job = queue.add("sendEmail", {
        "to": "user@example.com",
        "subject": "Welcome!",
        "body": "Thanks for signing up.",
    })
    assert job.id == "1"

    # Process this job after 60 seconds
    job = queue.add("reminder", {"message": "Don't forget!"}, {"delay": 60000})
    assert queue.get_job_state(job.id) == "delayed"

    job = queue.add(
        "processData",
        {"data": "..."},
        {
            "attempts": 3,
            "backoff": {"type": "exponential", "delay": 1000},
            "removeOnComplete": True,
            "removeOnFail": 100,
        },
    )
    assert job.opts["attempts"] == 3 and job.opts["removeOnFail"] == 100

    job = queue.add("paint", {"color": "white"}, {"deduplication": {"id": "custom-dedup-id"}})
    again = queue.add("paint", {"color": "white"}, {"deduplication": {"id": "custom-dedup-id"}})
    assert again.id == job.id
    queue.close()


def test_retrying_a_failed_job(default_redis):
    from bullmq_sync import Job, Queue, Worker

    queue = Queue("myQueue")
    queue.add("flaky", {"n": 1})

    def process(job, job_token):
        if job.attemptsMade == 0:
            raise Exception("temporary problem")
        job.updateProgress(42)
        return "ok"

    worker = Worker("myQueue", process, {"connection": default_redis.url})
    wait_until(lambda: queue.getJobCounts("failed")["failed"] == 1)

    job = Job.fromId(queue, "1")
    job.retry("failed")
    wait_until(lambda: queue.getJobState("1") == "completed")
    worker.close()

    job = Job.fromId(queue, "1")
    assert job.returnvalue == "ok" and job.progress == 42 and job.attemptsMade == 2
    job.retry("completed", {"resetAttemptsMade": True})
    assert Job.fromId(queue, "1").attemptsMade == 0
    queue.close()
