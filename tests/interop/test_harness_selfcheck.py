"""Self-check of the interop harness itself (no bullmq_sync involved).

Proves that the Node driver (BullMQ 6 and 5) and the async Python port
helpers work against a real Redis and can exchange jobs with each other.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import NoReturn

import pytest
import redis

try:  # tests/interop is on sys.path (pytest "prepend" import of a plain dir)
    import nodebullmq
except ImportError:  # tests/ is on sys.path (setup.cfg pythonpath = tests)
    from interop import nodebullmq  # type: ignore[no-redef]

NodeBullMQ = nodebullmq.NodeBullMQ
NodeBullMQError = nodebullmq.NodeBullMQError
require_node = nodebullmq.require_node

pytestmark = pytest.mark.interop


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(message: str) -> NoReturn:
    if _ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def asyncport():
    if importlib.util.find_spec("bullmq") is None:
        _unavailable(
            "async Python port unavailable: PyPI package `bullmq` not installed"
        )
    try:
        import asyncport as module
    except ImportError:
        from interop import asyncport as module  # type: ignore[no-redef]
    return module


def test_node_adds_processes_and_reports_completed(
    node6: NodeBullMQ, prefix: str
) -> None:
    assert node6.info["version"] == "6.7.0"
    job_id = node6.call(
        "add", queue="q", prefix=prefix, name="greet", data={"who": "world"}, opts={}
    )["id"]

    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)

    assert outcomes == [
        {
            "event": "completed",
            "jobId": job_id,
            "name": "greet",
            "returnvalue": {"ok": True, "id": job_id},
            "attemptsMade": 1,
        }
    ]
    job = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert job["state"] == "completed"
    assert job["json"]["returnvalue"] == {"ok": True, "id": job_id}
    assert job["json"]["data"] == {"who": "world"}
    assert job["json"]["finishedOn"] >= job["json"]["processedOn"] > 0
    assert node6.call("getJob", queue="q", prefix=prefix, jobId="no-such-job") is None


def test_node_failure_shows_failed_reason(
    node6: NodeBullMQ, prefix: str, raw: redis.Redis
) -> None:
    job_id = node6.call(
        "add", queue="q", prefix=prefix, name="bad", data={"__fail": "boom"}, opts={}
    )["id"]

    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)

    assert [(o["event"], o["jobId"], o["failedReason"]) for o in outcomes] == [
        ("failed", job_id, "boom")
    ]
    job = node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert job["state"] == "failed"
    assert job["json"]["failedReason"] == "boom"
    assert job["json"]["attemptsMade"] == 1
    assert "boom" in job["json"]["stacktrace"][0]
    # Stored raw (not JSON-encoded) in the job hash.
    assert raw.hget(f"{prefix}:q:{job_id}", "failedReason") == "boom"

    # Error replies carry BullMQ's numeric code: -3 = job not in that state.
    with pytest.raises(NodeBullMQError) as excinfo:
        node6.call(
            "retryJob", queue="q", prefix=prefix, jobId=job_id, state="completed"
        )
    assert excinfo.value.code == -3
    node6.call("retryJob", queue="q", prefix=prefix, jobId=job_id, state="failed")
    assert (
        node6.call("getJob", queue="q", prefix=prefix, jobId=job_id)["state"]
        == "waiting"
    )


def test_async_port_adds_node_processes(
    node6: NodeBullMQ, asyncport, prefix: str, redis_url: str
) -> None:
    job_id = asyncport.add(
        redis_url, "q", "from-port", {"__return": [1, "two"]}, prefix=prefix
    )

    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)

    assert [(o["event"], o["jobId"], o["returnvalue"]) for o in outcomes] == [
        ("completed", job_id, [1, "two"])
    ]
    seen_by_port = asyncport.get_job(redis_url, "q", job_id, prefix=prefix)
    assert seen_by_port["state"] == "completed"
    assert seen_by_port["returnvalue"] == [1, "two"]
    assert seen_by_port["name"] == "from-port"


def test_node_adds_async_port_processes(
    node6: NodeBullMQ, asyncport, prefix: str, redis_url: str
) -> None:
    ok_id = node6.call("add", queue="q", prefix=prefix, name="ok", data={"n": 1})["id"]
    bad_id = node6.call(
        "add", queue="q", prefix=prefix, name="bad", data={"__fail": "port says no"}
    )["id"]

    outcomes = asyncport.process(
        redis_url, "q", count=2, timeout_s=10, prefix=prefix
    )

    assert [(o["event"], o["jobId"]) for o in outcomes] == [
        ("completed", ok_id),
        ("failed", bad_id),
    ]
    ok = node6.call("getJob", queue="q", prefix=prefix, jobId=ok_id)
    assert ok["state"] == "completed"
    assert ok["json"]["returnvalue"] == {"ok": True, "id": ok_id}
    bad = node6.call("getJob", queue="q", prefix=prefix, jobId=bad_id)
    assert bad["state"] == "failed"
    assert bad["json"]["failedReason"] == "port says no"


def test_v5_adds_v6_processes(
    node5: NodeBullMQ, node6: NodeBullMQ, prefix: str
) -> None:
    assert node5.info["version"] == "5.81.5"
    job_id = node5.call(
        "add", queue="q", prefix=prefix, name="old", data={"v": 5}, opts={"attempts": 2}
    )["id"]

    node6.call("eventsStart", queue="q", prefix=prefix)
    outcomes = node6.call("process", queue="q", prefix=prefix, count=1, timeoutMs=10000)
    events = node6.call(
        "eventsCollect",
        queue="q",
        prefix=prefix,
        waitFor={"event": "completed", "jobId": job_id},
        timeoutMs=5000,
    )

    assert [(o["event"], o["jobId"]) for o in outcomes] == [("completed", job_id)]
    assert [e["event"] for e in events if e.get("jobId") == job_id] == [
        "active",
        "completed",
    ]
    job = node5.call("getJob", queue="q", prefix=prefix, jobId=job_id)
    assert job["state"] == "completed"
    assert job["json"]["returnvalue"] == {"ok": True, "id": job_id}
    assert job["json"]["opts"]["attempts"] == 2
