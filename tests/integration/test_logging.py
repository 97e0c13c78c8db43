"""Transitions are logged as structured events; the library never prints or configures."""

from __future__ import annotations

import logging

import pytest
import structlog
from jobfactory import put_job

from bullmq_sync import Job, JobNotInState, Queue


@pytest.fixture
def captured():
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Capture(level=logging.DEBUG)
    logger = logging.getLogger("bullmq_sync")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_retry_emits_one_structured_event(queue, raw, prefix, captured):
    put_job(raw, prefix, "q", "1")
    with structlog.testing.capture_logs() as events:
        Job.from_id(queue, "1").retry(reset_attempts_made=True)
    [event] = [e for e in events if e["event"] == "job.retried"]
    assert event["queue"] == "q" and event["job_id"] == "1"
    assert event["from_state"] == "failed" and event["to_state"] == "waiting"
    assert event["reset_attempts_made"] is True and event["elapsed_ms"] >= 0
    assert "data" not in event


def test_refused_retry_logs_the_code(queue, raw, prefix, captured):
    put_job(raw, prefix, "q", "1", state="wait")
    with structlog.testing.capture_logs() as events:
        with pytest.raises(JobNotInState):
            Job.from_id(queue, "1").retry()
    [event] = [e for e in events if e["event"] == "job.retry_refused"]
    assert event["code"] == -3


def test_plain_logging_apps_get_records_without_job_data(queue, raw, prefix, captured):
    put_job(raw, prefix, "q", "1", extra={"data": '{"secret": "hunter2"}'})
    Job.from_id(queue, "1").retry()
    messages = [r.getMessage() for r in captured]
    assert any("job.retried" in m for m in messages)
    assert not any("hunter2" in m for m in messages)


def test_nothing_is_printed_by_default(redis_url, raw, prefix, capsys):
    put_job(raw, prefix, "q", "1")
    with Queue("q", connection=redis_url.replace("redis://", "redis://:pw@") if False else redis_url, prefix=prefix) as q:
        Job.from_id(q, "1").retry()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
