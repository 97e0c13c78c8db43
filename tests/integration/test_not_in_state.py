"""JobNotInState says where the job actually is, read by the refusing script itself."""

from __future__ import annotations

import pytest
from jobfactory import put_job, snapshot

from bullmq_sync import Job, JobNotInState
from bullmq_sync.cli import main


def place(raw, prefix: str, job_id: str, where: str) -> None:
    """Job ``job_id`` in ``where`` (a state name as get_state reports it, or "unknown")."""
    base = f"{prefix}:q:"
    if where in ("failed", "completed", "active", "delayed"):
        put_job(raw, prefix, "q", job_id, state=where)
        return
    put_job(raw, prefix, "q", job_id, state="none")
    if where == "waiting":
        raw.lpush(base + "wait", job_id)
    elif where == "waiting (legacy paused list)":
        raw.lpush(base + "paused", job_id)
    elif where == "prioritized":
        raw.zadd(base + "prioritized", {job_id: 2**32})
    elif where == "waiting-children":
        raw.zadd(base + "waiting-children", {job_id: 0})


CASES = [
    ("waiting", "waiting"),
    ("waiting (legacy paused list)", "waiting"),
    ("active", "active"),
    ("delayed", "delayed"),
    ("prioritized", "prioritized"),
    ("completed", "completed"),
    ("waiting-children", "waiting-children"),
    ("unknown", "unknown"),
]


class CountingCalls:
    """Counts the round trips a Connection makes (every call goes through ``_once``)."""

    def __init__(self, connection, monkeypatch) -> None:
        self.calls = 0
        real = connection._once

        def counted(work):
            self.calls += 1
            return real(work)

        monkeypatch.setattr(connection, "_once", counted)


@pytest.mark.parametrize("where,actual", CASES)
def test_retry_refusal_carries_the_actual_state(queue, raw, prefix, where, actual, monkeypatch):
    place(raw, prefix, "1", where)
    job = Job.from_id(queue, "1")
    before = snapshot(raw, prefix)
    counter = CountingCalls(queue.connection, monkeypatch)
    with pytest.raises(JobNotInState) as info:
        job.retry()
    assert counter.calls == 1  # the refusal and the state come from one script call
    error = info.value
    assert error.code == -3 and error.state == "failed" and error.actual_state == actual
    if actual == "unknown":
        assert str(error) == "Job 1 is in no state (not in any list), not failed. reprocessJob"
    else:
        assert str(error) == f"Job 1 is {actual}, not failed. reprocessJob"
    assert snapshot(raw, prefix) == before


def test_retry_completed_of_a_failed_job(queue, raw, prefix):
    place(raw, prefix, "1", "failed")
    with pytest.raises(JobNotInState) as info:
        Job.from_id(queue, "1").retry("completed")
    assert (info.value.state, info.value.actual_state) == ("completed", "failed")
    assert str(info.value) == "Job 1 is failed, not completed. reprocessJob"


@pytest.mark.parametrize("operation", ["promote", "change_delay"])
@pytest.mark.parametrize("where", ["waiting", "failed", "active"])
def test_promote_and_change_delay_refusals_carry_the_actual_state(queue, raw, prefix, operation, where):
    place(raw, prefix, "1", where)
    job = Job.from_id(queue, "1")
    before = snapshot(raw, prefix)
    with pytest.raises(JobNotInState) as info:
        job.promote() if operation == "promote" else job.change_delay(1000)
    assert info.value.state == "delayed" and info.value.actual_state == where
    assert str(info.value).startswith(f"Job 1 is {where}, not delayed.")
    assert snapshot(raw, prefix) == before


def test_cli_retry_says_where_the_job_is(redis_url, raw, prefix, capsys):
    place(raw, prefix, "1", "waiting")
    assert main(["--url", redis_url, "--prefix", prefix, "retry", "q", "1"]) == 1
    captured = capsys.readouterr()
    assert "job 1: skipped, it is waiting, not failed" in captured.err
    assert captured.out.strip() == "moved 0, skipped 1, errors 0"
