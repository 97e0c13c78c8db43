"""Any bad Redis URL is a ConfigurationError from Connection(...), before any socket is opened."""

from __future__ import annotations

import pytest

from bullmq_sync import ConfigurationError, Connection, Queue
from bullmq_sync.connection import redact_url

BAD_URLS = [
    "redis://localhost:99999",
    "redis://localhost:65536",
    "redis://localhost:0",
    "redis://localhost:-1",
    "redis://localhost:abc",
    "redis://localhost:6379/abc",
    "redis://localhost:6379/-1",
    "redis://localhost/99999999999999999999",
    "redis://[::1",
    "redis://local host:6379",
    "redis://:secret@localhost:99999",
    "redis://localhost:6379?socket_timeout=abc",
    "redis://localhost:6379?no_such_option=1",
    "unix://",
    "http://localhost:6402",
    "https://localhost:6379",
    "localhost:6379",
    "garbage",
    "",
    " redis://localhost:6379",
    "redis+cluster://localhost:99999",
    "redis+cluster://localhost:abc",
    "redis+cluster://[::1",
    "redis+sentinel://localhost:99999/mymaster",
    "redis+sentinel://localhost:26379/mymaster/abc",
    "redis+sentinel://localhost:26379",
    "redis+sentinel://localhost:26379/mymaster?nope=1",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_url_is_a_configuration_error(url):
    with pytest.raises(ConfigurationError) as info:
        Connection(url)
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigurationError):
        Queue("q", connection=url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379",
        "redis://localhost",
        "redis://:pw@localhost:6379/2",
        "redis://user:pw@localhost:1/0",
        "rediss://localhost:6380",
        "redis://[::1]:6379",
        "unix:///tmp/redis.sock",
        "redis://localhost:6379?socket_keepalive=true",
        "redis+sentinel://h1:26379,h2:26379/mymaster/1",
    ],
)
def test_good_url_builds_without_connecting(url):
    Connection(url).close()


@pytest.mark.parametrize(
    "url", ["redis://:s3cret@h:99999", "redis://u:s3cret@[::1", "redis://u:s3cret@h:1/x"]
)
def test_redact_url_never_raises_nor_leaks(url):
    assert "s3cret" not in redact_url(url)
