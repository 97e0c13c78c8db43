"""The ``deduplication`` job option: validation and BullMQ's stored encoding (no Redis)."""

from __future__ import annotations

import json

import pytest

from bullmq_sync import InvalidArgument
from bullmq_sync.keys import QueueKeys
from bullmq_sync.options import deduplication_spec, prepare_job


def test_stored_as_de_with_camel_case_fields() -> None:
    job = prepare_job("n", {}, {"deduplication": {"id": "d", "ttl": 5000.0,
                                                  "keep_last_if_active": True}}, now_ms=1)
    assert json.loads(job.opts_json)["de"] == {"id": "d", "ttl": 5000, "keepLastIfActive": True}
    assert json.loads(job.dedup_json or "") == {"id": "d", "ttl": 5000, "keepLastIfActive": True}
    assert prepare_job("n", {}, {}, now_ms=1).dedup_json is None


def test_short_key_and_defaults_are_accepted() -> None:
    job = prepare_job("n", {}, {"de": {"id": "d"}}, now_ms=1)
    assert json.loads(job.opts_json)["de"] == {"id": "d"}
    job = prepare_job("n", {}, {}, {"deduplication": {"id": "all"}}, now_ms=1)
    assert json.loads(job.dedup_json or "") == {"id": "all"}


@pytest.mark.parametrize("value, message", [
    ({}, "id must be provided"),
    ({"id": ""}, "non-empty string"),
    ({"id": "d", "ttl": 0}, "ttl must be at least 1"),
    ({"id": "d", "extend": 1}, "must be a bool"),
    ({"id": "d", "nope": 1}, "unknown deduplication field"),
    ([("id", "d")], "must be a dict"),
])
def test_refusals_name_the_problem(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        deduplication_spec(value)


def test_parent_and_deduplication_together_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="cannot be used together"):
        prepare_job("n", {}, {"deduplication": {"id": "d"}, "parent": {"id": "p", "queue": "b:q"}})


def test_dedup_keys() -> None:
    keys = QueueKeys("q", prefix="bull")
    assert keys.dedup("x") == "bull:q:de:x" and keys.dedup_next("x") == "bull:q:dn:x"
