"""telemetry.inject / job.telemetry_context: the carrier BullMQ stores, edge cases, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from bullmq_sync import InvalidArgument, Job, telemetry


@pytest.fixture
def tracer() -> Any:
    provider = TracerProvider()
    yield provider.get_tracer("bullmq-sync-tests")
    provider.shutdown()


def test_round_trip_through_a_stored_job(queue: Any, tracer: Any) -> None:
    with tracer.start_as_current_span("request") as span:
        opts = telemetry.inject()
    stored = {"opts": json.dumps({"attempts": 1, "tm": opts["telemetry"]["metadata"]})}
    job = Job.from_hash(queue, "1", stored)
    assert job.telemetry_metadata == opts["telemetry"]["metadata"]
    with tracer.start_as_current_span("process", context=job.telemetry_context()) as child:
        pass
    assert child.get_span_context().trace_id == span.get_span_context().trace_id
    assert child.parent is not None and child.parent.span_id == span.get_span_context().span_id


def test_nothing_to_propagate_leaves_the_options_alone(tracer: Any) -> None:
    assert telemetry.inject({"attempts": 3}) == {"attempts": 3}  # no active span
    with tracer.start_as_current_span("request"):
        omitted = {"telemetry": {"omitContext": True}}
        assert telemetry.inject(omitted) == omitted
        replaced = telemetry.inject({"telemetry": {"metadata": "old", "omitContext": False}})
    assert replaced["telemetry"]["metadata"] != "old"
    assert replaced["telemetry"]["omitContext"] is False


def test_a_job_without_or_with_unreadable_metadata_has_no_parent(queue: Any) -> None:
    for stored in ({}, {"opts": "{}"}, {"opts": json.dumps({"tm": "not json"})},
                   {"opts": json.dumps({"tm": "[1]"})}, {"opts": "garbage"}):
        job = Job.from_hash(queue, "1", stored)
        parent = trace.get_current_span(job.telemetry_context())
        assert not parent.get_span_context().is_valid


def test_bad_input_is_refused() -> None:
    for bad in ("x", 3, ["telemetry"]):
        with pytest.raises(InvalidArgument):
            telemetry.inject(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="telemetry must be"):
        telemetry.inject({"telemetry": "abc"})
