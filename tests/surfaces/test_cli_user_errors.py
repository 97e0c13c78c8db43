"""The CLI answers a user's mistake (bad URL, missing password, dead server) without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from redis_server import LocalRedis, redis_server_binary

from bullmq_sync.cli import main


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:99999",
        "redis://localhost:abc",
        "http://localhost:6402",
        "garbage",
        "redis://localhost:6379/db",
        "redis://[::1",
        "redis+cluster://localhost:99999",
        "redis+sentinel://h:26379",
    ],
)
@pytest.mark.parametrize("command", [["counts", "q"], ["jobs", "q"], ["retry", "q", "1"]])
def test_bad_url_exits_2_without_traceback(url, command, capsys):
    assert main(["--url", url, *command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bullmq-sync {command[0]}: error: ") and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_bad_url_from_the_environment_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "bullmq_sync", "counts", "q"],
        capture_output=True,
        text=True,
        env={"REDIS_URL": "redis://localhost:99999", "PATH": ""},
        timeout=60,
    )
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def password_redis():
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("needs a redis-server binary")
    server = LocalRedis(binary, extra=["--requirepass", "s3cret"]).start()
    yield server
    server.stop()


def test_server_requiring_a_password_given_none(password_redis, capsys):
    from bullmq_sync import ConfigurationError, Connection

    with pytest.raises(ConfigurationError) as info:
        Connection(password_redis.url).execute("PING")
    assert str(info.value).startswith(
        f"the Redis server at {password_redis.url} requires a password and none was given"
    )
    assert main(["--url", password_redis.url, "counts", "q"]) == 2
    err = capsys.readouterr().err
    assert "requires a password and none was given" in err and "Traceback" not in err


def test_wrong_password_is_refused_credentials(password_redis):
    from bullmq_sync import ConfigurationError, Connection

    url = password_redis.url.replace("redis://", "redis://:wrong@")
    with pytest.raises(ConfigurationError) as info:
        Connection(url).execute("PING")
    assert "refused the credentials given" in str(info.value) and "wrong" not in str(info.value)
    good = Connection(password_redis.url.replace("redis://", "redis://:s3cret@"))
    assert good.execute("PING") == "PONG"
    good.close()


def test_demo_with_an_unreachable_url_warns_once_and_agrees_on_the_numbers():
    import re
    import time

    from redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bullmq_sync", "--url", url, "demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert sum("redis.retry " in line for line in lines) == 1  # one warning, not one per attempt
    [summary] = [line for line in lines if "redis.gave_up" in line]
    attempts = int(re.search(r"attempts=(\d+)", summary).group(1))
    assert re.fullmatch(
        rf"bullmq-sync: error: could not reach Redis at {re.escape(url)} \({attempts} attempts "
        r"in 2\.\d s\): Error 111 connecting to .*Connection refused\.",
        lines[-1],
    ), lines[-1]
