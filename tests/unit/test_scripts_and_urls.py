import re
from pathlib import Path

import pytest

from bullmq_sync.connection import Connection, redact_url
from bullmq_sync.errors import ConfigurationError, InvalidArgument
from bullmq_sync.job_ops import _finished_state
from bullmq_sync.scripts import LIBRARY, ScriptLibrary

LUA = Path(__file__).resolve().parents[2] / "lua"


def test_every_script_has_a_header_with_keys_argv_and_returns():
    for path in LUA.glob("*.lua"):
        head = path.read_text()[:3000]
        assert head.startswith("--[["), path.name
        assert "KEYS[1]" in head, path.name
        assert "ARGV" in head or "no ARGV" in head.lower(), path.name
        assert re.search(r"Returns?", head), path.name


def test_includes_are_expanded_once_and_sha_is_sha1_of_source():
    import hashlib

    script = LIBRARY.get("retryFinishedJob")
    assert "@include" not in script.source
    assert script.source.count("local function enqueueWaiting") == 1
    assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()


def test_nested_include_is_expanded_once(tmp_path):
    (tmp_path / "includes").mkdir()
    (tmp_path / "includes" / "a.lua").write_text('-- @include "b"\nlocal a = 1\n')
    (tmp_path / "includes" / "b.lua").write_text("local b = 2\n")
    (tmp_path / "s.lua").write_text('-- @include "a"\n-- @include "b"\nreturn a + b\n')
    source = ScriptLibrary(tmp_path).get("s").source
    assert source.count("local b = 2") == 1 and "local a = 1" in source


def test_all_lists_every_script():
    names = {s.name for s in LIBRARY.all()}
    assert {p.stem for p in LUA.glob("*.lua")} == names


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host/1", "redis://user:***@host/1"),
        ("redis://host:6379", "redis://host:6379"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_repr_never_shows_the_password():
    connection = Connection("redis://user:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in repr(connection)
    connection.close()


@pytest.mark.parametrize("url", ["http://x", "localhost:6379", 42])
def test_bad_connection_values(url):
    with pytest.raises(ConfigurationError):
        Connection(url)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["active", "wait", "waiting", "faild", "", None])
def test_retry_states_are_checked_before_redis(state):
    with pytest.raises(InvalidArgument):
        _finished_state(state)  # type: ignore[arg-type]
