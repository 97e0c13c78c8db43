"""Trace context across Node BullMQ (bullmq-otel) and bullmq-sync, both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import wait_for

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from bullmq_sync import Job, Queue, Worker, telemetry

pytestmark = pytest.mark.interop

@pytest.fixture
def tracer() -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("bullmq-sync-tests"), exporter
    provider.shutdown()


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def test_a_trace_started_in_node_continues_in_our_processor(
    node6: Any, raw: Any, redis_url: str, prefix: str, tracer: Any
) -> None:
    py_tracer, exporter = tracer
    node6.call("otelSpans")  # forget spans of earlier tests
    added = node6.call("otelAdd", queue="q", prefix=prefix, name="x", data={"n": 1})
    stored = json.loads(raw.hget(f"{prefix}:q:{added['id']}", "opts"))
    carrier = json.loads(stored["tm"])
    assert carrier["traceparent"].split("-")[1] == added["traceId"]
    (add_span,) = [s for s in node6.call("otelSpans") if s["name"] == "add q.x"]
    assert add_span["parentSpanId"] == added["spanId"]

    def processor(job: Job) -> str:
        with py_tracer.start_as_current_span(
            "process q", context=job.telemetry_context(), kind=trace.SpanKind.CONSUMER
        ):
            return "done"

    with Queue("q", connection=redis_url, prefix=prefix) as queue, Worker(
        "q", processor, connection=redis_url, prefix=prefix
    ):
        wait_for(lambda: queue.get_completed_count() == 1)
        job = queue.get_job(added["id"])
        assert job is not None and job.telemetry_metadata == stored["tm"]
    (span,) = exporter.get_finished_spans()
    assert _hex(span.context.trace_id, 32) == added["traceId"]
    assert span.parent is not None and _hex(span.parent.span_id, 16) == add_span["spanId"]


def test_a_trace_started_here_continues_in_a_node_worker(
    node6: Any, raw: Any, prefix: str, tracer: Any
) -> None:
    py_tracer, _ = tracer
    with py_tracer.start_as_current_span("python request") as span:
        opts = telemetry.inject({"attempts": 2})
    ctx = span.get_span_context()
    assert opts["attempts"] == 2
    assert json.loads(opts["telemetry"]["metadata"]) == {
        "traceparent": f"00-{_hex(ctx.trace_id, 32)}-{_hex(ctx.span_id, 16)}-"
        f"{_hex(ctx.trace_flags, 2)}"
    }
    job_id = node6.call("add", queue="q", prefix=prefix, name="x", data={"__return": 7},
                        opts=opts)["id"]
    node6.call("otelSpans")
    outcomes = node6.call("otelProcess", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    assert [o["event"] for o in outcomes] == ["completed"]
    process = [s for s in node6.call("otelSpans") if s["name"] == "process q"]
    assert process and process[0]["traceId"] == _hex(ctx.trace_id, 32)
    assert process[0]["parentSpanId"] == _hex(ctx.span_id, 16)
    stored = json.loads(raw.hget(f"{prefix}:q:{job_id}", "opts"))
    assert stored["tm"] == opts["telemetry"]["metadata"]


def test_our_add_stores_the_context_as_node_does(
    node6: Any, raw: Any, redis_url: str, prefix: str, tracer: Any
) -> None:
    py_tracer, _ = tracer
    with Queue("q", connection=redis_url, prefix=prefix) as queue:
        with py_tracer.start_as_current_span("python request") as span:
            job = queue.add("x", {"__return": 1}, telemetry.inject())
    ctx = span.get_span_context()
    stored = json.loads(raw.hget(f"{prefix}:q:{job.id}", "opts"))
    assert json.loads(stored["tm"])["traceparent"].split("-")[2] == _hex(ctx.span_id, 16)
    node6.call("otelSpans")
    node6.call("otelProcess", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    process = [s for s in node6.call("otelSpans") if s["name"] == "process q"]
    assert process and process[0]["parentSpanId"] == _hex(ctx.span_id, 16)
