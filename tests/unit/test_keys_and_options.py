import pytest

from bullmq_sync import InvalidArgument, QueueKeys
from bullmq_sync.keys import split_job_key, validate_job_id
from bullmq_sync.options import decode_stored_opts, encode_stored_opts


def test_queue_keys_follow_bullmq_layout():
    keys = QueueKeys("emails", prefix="bull")
    assert keys.base == "bull:emails:"
    assert keys.wait == "bull:emails:wait"
    assert keys.waiting_children == "bull:emails:waiting-children"
    assert keys.stalled_check == "bull:emails:stalled-check"
    assert keys.pc == "bull:emails:pc"
    assert keys.job("7") == "bull:emails:7"
    assert keys.job_sub("7", "lock") == "bull:emails:7:lock"
    assert keys.state("failed") == "bull:emails:failed"
    assert keys.qualified_name == "bull:emails"


def test_outcome_keys_cannot_be_job_keys():
    op = QueueKeys("q").op("abc")
    assert op.startswith("bull:q:")
    # BullMQ derives a job id as the text after the last ':'; ours has colons before it.
    assert op[len("bull:q:"):].count(":") >= 2


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        QueueKeys("q").nonsense  # noqa: B018


@pytest.mark.parametrize("name", ["", "a:b", None, 3])
def test_bad_queue_names_are_refused(name):
    with pytest.raises(InvalidArgument):
        QueueKeys(name)  # type: ignore[arg-type]


def test_hash_tag():
    assert QueueKeys("{emails}").hash_slot_tag() == "emails"
    assert QueueKeys("emails", prefix="{app}").hash_slot_tag() == "app"
    assert QueueKeys("emails").hash_slot_tag() == ""


@pytest.mark.parametrize("bad", ["", None, 1.5, True, "x" * 1025, b"1"])
def test_job_id_validation(bad):
    with pytest.raises(InvalidArgument):
        validate_job_id(bad)


def test_job_id_accepts_ints_as_strings():
    assert validate_job_id(12) == "12"


def test_split_job_key():
    assert split_job_key("bull:q:42") == ("bull:q:", "42")


def test_stored_opts_round_trip_short_keys():
    stored = encode_stored_opts({"failParentOnFailure": True, "attempts": 3, "keepLogs": 5})
    assert stored == {"fpof": True, "attempts": 3, "kl": 5}
    import json

    assert decode_stored_opts(json.dumps(stored)) == {
        "failParentOnFailure": True,
        "attempts": 3,
        "keepLogs": 5,
    }


@pytest.mark.parametrize("raw", [None, "", "not json", "[1,2]"])
def test_bad_stored_opts_decode_to_empty(raw):
    assert decode_stored_opts(raw) == {}
