"""Missing cluster tools skip the cluster/sentinel tests on a laptop but fail them in CI."""

from __future__ import annotations

import shutil

import pytest
from cluster_servers import require_binaries


def test_missing_redis_cli_fails_under_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-cli"):
        require_binaries()


def test_missing_redis_cli_skips_outside_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_binaries()
