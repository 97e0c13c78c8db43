"""Job.from_hash: the numbers of a job hash, whole or hand-written, and who owns ``raw``."""

from __future__ import annotations

from typing import Any

from bullmq_sync import Job

QUEUE: Any = object()  # from_hash only keeps the queue it is given


def test_whole_numbers_and_absent_fields_read_as_bullmq_writes_them():
    job = Job.from_hash(QUEUE, "7", {
        "name": "n", "data": '{"a": 1}', "opts": "{}", "timestamp": "1700000000000",
        "delay": "0", "priority": "3", "atm": "2", "ats": "3", "processedOn": "1700000000500",
    })
    assert (job.timestamp, job.delay, job.priority) == (1700000000000, 0, 3)
    assert (job.attempts_made, job.attempts_started, job.stalled_counter) == (2, 3, 0)
    assert (job.processed_on, job.finished_on) == (1700000000500, None)
    assert job.data == {"a": 1}


def test_hand_written_numbers_fall_back_field_by_field():
    """One field in float notation does not spoil the others: each reads as before (floats
    truncated, garbage and empty text as the field's default)."""
    job = Job.from_hash(QUEUE, "7", {
        "timestamp": "1.5e3", "delay": "x", "priority": "", "attemptsMade": "4",
        "ats": "2.9", "stc": "1", "processedOn": "", "finishedOn": "12.0",
    })
    assert (job.timestamp, job.delay, job.priority) == (1500, 0, 0)
    assert (job.attempts_made, job.attempts_started, job.stalled_counter) == (4, 2, 1)
    assert (job.processed_on, job.finished_on) == (None, 12)


def test_zero_times_are_kept_and_not_taken_for_absent():
    job = Job.from_hash(QUEUE, "7", {"processedOn": "0", "finishedOn": "0", "atm": "0"})
    assert (job.processed_on, job.finished_on, job.attempts_made) == (0, 0, 0)


def test_from_hash_copies_the_mapping_it_is_given():
    fields = {"name": "n", "timestamp": "1"}
    job = Job.from_hash(QUEUE, "7", fields)
    fields["name"] = "changed"
    assert job.raw == {"name": "n", "timestamp": "1"} and job.name == "n"
