"""options.prepare_job: BullMQ's stored encoding and Node's validation rules, no Redis."""

from __future__ import annotations

import json

import pytest

from bullmq_sync import InvalidArgument
from bullmq_sync.options import PRIORITY_LIMIT, prepare_job, validate_custom_job_id


def test_defaults_then_opts_then_short_keys():
    job = prepare_job("n", {"a": 1}, {"attempts": 2, "keep_logs": 5, "failParentOnFailure": True,
                                      "parent": {"id": "p", "queue": "bull:q"}},
                      {"attempts": 9, "removeOnComplete": 3}, now_ms=1234)
    assert json.loads(job.opts_json) == {"attempts": 2, "removeOnComplete": 3, "kl": 5,
                                         "fpof": True, "parent": {"id": "p", "queue": "bull:q"}}
    assert job.timestamp == 1234 and job.parent_key == "bull:q:p"
    assert json.loads(job.parent_json) == {"id": "p", "queueKey": "bull:q", "fpof": True}
    assert job.data_json == '{"a":1}'


def test_backoff_number_becomes_fixed_and_none_data_is_empty_object():
    job = prepare_job("n", None, {"backoff": 300})
    assert json.loads(job.opts_json) == {"attempts": 0, "backoff": {"type": "fixed", "delay": 300}}
    assert job.data_json == "{}"


@pytest.mark.parametrize("good", ["abc", "007", "-0", "repeat:a:1", "1.5", "x" * 1024])
def test_custom_ids_node_accepts(good):
    assert validate_custom_job_id(good) == good


@pytest.mark.parametrize("bad", ["1", "-3", "0", "0:x", "a:b", "a:b:c:d", "", "x" * 1025, 5, None])
def test_custom_ids_node_refuses(bad):
    with pytest.raises(InvalidArgument):
        validate_custom_job_id(bad)


def test_priority_bounds():
    assert prepare_job("n", {}, {"priority": PRIORITY_LIMIT}).priority == PRIORITY_LIMIT
    with pytest.raises(InvalidArgument):
        prepare_job("n", {}, {"priority": PRIORITY_LIMIT + 1})
