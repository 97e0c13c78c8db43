"""Pure option handling of flow introspection and retry_tree (no Redis)."""

from __future__ import annotations

import pytest

from bullmq_sync import InvalidArgument
from bullmq_sync.flow_introspection import dependency_pages, flow_options, parse_node_key
from bullmq_sync.flow_retry import DEFAULT_MAX_JOBS, retry_options


def test_dependency_pages_defaults_and_falsy_types():
    assert dependency_pages({}) == {}
    assert dependency_pages({"processed": None, "failed": False}) == {}
    assert dependency_pages({"processed": True, "failed": {"count": 5},
                             "unprocessed": {"cursor": 7}}) == {
        "processed": (0, 20), "unprocessed": (7, 20), "failed": (0, 5)}


@pytest.mark.parametrize("opts", [
    {"children": {}}, {"processed": {"page": 1}}, {"failed": {"cursor": -1}},
    {"ignored": {"count": 0}}, {"unprocessed": {"count": True}}, {"processed": "all"},
])
def test_dependency_pages_refusals_name_the_key(opts):
    with pytest.raises(InvalidArgument) as refused:
        dependency_pages(opts)
    assert any(str(key) in str(refused.value) for key in opts)


def test_flow_options():
    assert flow_options({"id": 7, "queueName": "q"}, "bull") == {
        "id": "7", "queue_name": "q", "prefix": "bull", "depth": 10, "max_children": 20}
    assert flow_options({"id": "x", "queue_name": "q", "prefix": "{app}", "depth": 1,
                         "max_children": 3}, "bull")["prefix"] == "{app}"
    with pytest.raises(InvalidArgument, match="colour"):
        flow_options({"id": "x", "queueName": "q", "colour": 1}, "bull")


def test_parse_node_key_splits_at_the_last_two_colons():
    assert parse_node_key("bull:q:42") == ("bull", "q", "42")
    assert parse_node_key("a:b:c:q:42") == ("a:b:c", "q", "42")
    assert parse_node_key("{app}:q:x") == ("{app}", "q", "x")


def test_retry_options():
    base = {"reset_attempts_made": False, "reset_attempts_started": False,
            "max_jobs": DEFAULT_MAX_JOBS}
    assert retry_options(None, **base) == base
    assert retry_options({"resetAttemptsMade": True, "maxJobs": 5}, **base) == {
        **base, "reset_attempts_made": True, "max_jobs": 5}
    for bad in ({"reset": True}, {"maxJobs": 0}, {"maxJobs": 100_001}, {"maxJobs": 2.5},
                {"resetAttemptsStarted": 1}):
        with pytest.raises(InvalidArgument):
            retry_options(bad, **base)
