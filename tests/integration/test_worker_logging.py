"""The worker says why a job failed: a warning per failed attempt (error type and message,
attempt numbers, whether and when it runs again), completions at info, never job data."""

from __future__ import annotations

import time
from typing import Any

from helpers import wait_for

from bullmq_sync import Queue, UnrecoverableError, Worker


def test_failures_are_warnings_with_the_error_and_the_retry_plan(
    queue: Queue, raw: Any, redis_url: str, prefix: str, log_events: list[dict[str, Any]]
) -> None:
    def proc(job: Any) -> str:
        if job.data["kind"] == "fatal":
            raise UnrecoverableError("card declined")
        if job.attempts_made < 2:
            raise ValueError("bad input")
        return "ok"

    secret = "hunter2-card-4111"
    flaky = queue.add("pay", {"kind": "flaky", "card": secret},
                      {"attempts": 3, "backoff": {"type": "fixed", "delay": 50}})
    now = queue.add("pay", {"kind": "flaky", "card": secret}, {"attempts": 2})
    fatal = queue.add("pay", {"kind": "fatal", "card": secret}, {"attempts": 5})
    with Worker("q", proc, connection=redis_url, prefix=prefix, drain_delay=1):
        wait_for(lambda: raw.zcard(f"{prefix}:q:completed") == 1
                 and raw.zcard(f"{prefix}:q:failed") == 2)
        time.sleep(0.1)

    def of(job_id: str, name: str) -> list[dict[str, Any]]:
        return [e for e in log_events if e.get("job_id") == job_id and e["event"] == name]

    delayed = of(flaky.id, "job.delayed")
    assert [(e["log_level"], e["error_type"], e["error"], e["attempts_made"], e["attempts"],
             e["will_retry"], e["retry_in_ms"]) for e in delayed] == [
        ("warning", "ValueError", "bad input", 1, 3, True, 50),
        ("warning", "ValueError", "bad input", 2, 3, True, 50),
    ]
    assert delayed[0]["retry_at"].endswith("Z") and delayed[0]["to_state"] == "delayed"
    assert [e["log_level"] for e in of(flaky.id, "job.completed")] == ["info"]

    retrying = of(now.id, "job.retrying")
    assert [(e["log_level"], e["attempts_made"], e["retry_in_ms"], e["to_state"])
            for e in retrying] == [("warning", 1, 0, "waiting")]
    [given_up] = of(now.id, "job.failed")
    assert (given_up["log_level"], given_up["will_retry"], given_up["attempts_made"],
            given_up["attempts"], given_up["to_state"]) == ("warning", False, 2, 2, "failed")

    [fatal_event] = of(fatal.id, "job.failed")
    assert (fatal_event["error_type"], fatal_event["error"], fatal_event["will_retry"],
            fatal_event["attempts_made"]) == ("UnrecoverableError", "card declined", False, 1)
    assert secret not in repr(log_events)  # job data never reaches the log
