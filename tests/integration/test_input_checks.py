"""Flags are bools, and a string Redis cannot receive is refused before anything is sent."""

from __future__ import annotations

import os

import pytest
from jobfactory import put_job, snapshot

from bullmq_sync import InvalidArgument, Job

BAD_TEXT = os.fsdecode(b"report-\xff.csv")  # a lone surrogate, as a file name decodes
NOT_BOOLS = ["yes", "no", 1, 0, None, "False"]
NONE_MEANS_DEFAULT = {"remove remove_children", "obliterate force", "retry resetAttemptsMade"}
"""Node-shaped options (and keywords that share their parsing): None means "not given", as
Node treats undefined."""


def flag_calls(queue):
    job = lambda: Job.from_id(queue, "1")  # noqa: E731
    return {
        "retry reset_attempts_made": lambda v: job().retry("failed", reset_attempts_made=v),
        "retry reset_attempts_started": lambda v: job().retry(reset_attempts_started=v),
        "retry resetAttemptsMade": lambda v: job().retry("failed", {"resetAttemptsMade": v}),
        "change_priority lifo": lambda v: job().change_priority(1, lifo=v),
        "remove remove_children": lambda v: job().remove(remove_children=v),
        "drain delayed": lambda v: queue.drain(delayed=v),
        "obliterate force": lambda v: queue.obliterate(force=v),
        "get_jobs asc": lambda v: queue.get_jobs(["failed"], asc=v),
    }


FLAG_CALLS = [
    "retry reset_attempts_made",
    "retry reset_attempts_started",
    "retry resetAttemptsMade",
    "change_priority lifo",
    "remove remove_children",
    "drain delayed",
    "obliterate force",
    "get_jobs asc",
]


@pytest.mark.parametrize(
    ("call", "value"),
    [
        (call, value)
        for call in FLAG_CALLS
        for value in NOT_BOOLS
        if not (value is None and call in NONE_MEANS_DEFAULT)
    ],
)
def test_a_flag_must_be_a_bool(queue, raw, prefix, call, value):
    put_job(raw, prefix, "q", "1", state="failed")
    put_job(raw, prefix, "q", "2", state="wait")
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument) as info:
        flag_calls(queue)[call](value)
    assert "must be True or False" in str(info.value)
    assert snapshot(raw, prefix) == before


def unencodable_calls(queue):
    job = lambda: Job.from_id(queue, "1")  # noqa: E731
    return {
        "data": lambda: queue.add("report", {"file": BAD_TEXT}),
        "data key": lambda: queue.add("report", {BAD_TEXT: 1}),
        "name": lambda: queue.add(BAD_TEXT, {}),
        "job id": lambda: queue.add("report", {}, {"jobId": BAD_TEXT}),
        "bulk": lambda: queue.add_bulk([{"name": "a", "data": {}}, {"name": "b", "data": [BAD_TEXT]}]),
        "get_job": lambda: queue.get_job(BAD_TEXT),
        "update_data": lambda: job().update_data({"x": BAD_TEXT}),
        "log": lambda: job().log(BAD_TEXT),
        "dedup id": lambda: queue.add("r", {}, {"deduplication": {"id": BAD_TEXT}}),
    }


@pytest.mark.parametrize(
    "call", ["data", "data key", "name", "job id", "bulk", "get_job", "update_data", "log", "dedup id"]
)
def test_unencodable_string_is_invalid_argument_and_keeps_the_connection(queue, raw, prefix, call):
    put_job(raw, prefix, "q", "1", state="failed")
    queue.get_job_counts()  # a warm pool: one live socket
    pool = queue.connection.pool
    [socket_before] = [c._sock for c in pool._available_connections]
    created = pool._created_connections
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument) as info:
        unencodable_calls(queue)[call]()
    assert "cannot be encoded as UTF-8" in str(info.value) and "nothing was sent" in str(info.value)
    assert snapshot(raw, prefix) == before
    assert pool._created_connections == created
    assert [c._sock for c in pool._available_connections] == [socket_before]  # not dropped
    assert queue.get_job_counts("failed") == {"failed": 1}  # the next call works on it
    assert [c._sock for c in pool._available_connections] == [socket_before]


# -- values that would delete data if misread -------------------------------------------------


@pytest.mark.parametrize(
    "policy", [0.9, {"count": 0.4}, {"count": True}, {"age": -3600}, {"count": -2}, "10"]
)
@pytest.mark.parametrize("option", ["remove_on_complete", "remove_on_fail"])
def test_a_worker_keep_policy_that_would_delete_jobs_is_refused(redis_url, prefix, option, policy):
    from bullmq_sync import Worker

    with pytest.raises(InvalidArgument):
        Worker("q", lambda job: None, connection=redis_url, prefix=prefix, autorun=False,
               **{option: policy})


def test_remove_children_null_keeps_the_children_as_node_does(queue, raw, prefix):
    """Node reads ``{removeChildren: null}`` as falsy: the child stays."""
    from bullmq_sync import FlowProducer

    with FlowProducer(connection=queue.connection, prefix=prefix) as flows:
        node = flows.add({"name": "p", "queueName": "q", "children": [
            {"name": "c", "queueName": "q"}]})
    child_key = node.children[0].job.key
    parent = Job.from_id(queue, node.job.id)
    assert parent is not None and parent.remove({"removeChildren": None})
    assert raw.exists(child_key) and not raw.exists(node.job.key)


@pytest.mark.parametrize(
    "policy", ["failParentOnFailure", "ignoreDependencyOnFailure", "removeDependencyOnFailure",
               "continueParentOnFailure"]
)
@pytest.mark.parametrize("value", ["no", 0, 1])
def test_a_parent_policy_flag_must_be_a_bool(queue, raw, prefix, policy, value):
    before = snapshot(raw, prefix)
    with pytest.raises(InvalidArgument, match="must be True or False"):
        queue.add("x", {}, {policy: value})
    assert snapshot(raw, prefix) == before
