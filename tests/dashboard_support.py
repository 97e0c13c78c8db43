"""Helpers for the dashboard tests: serve ``bullmq-sync dashboard`` as a real subprocess,
find Debian's Chromium, fill queues fast, and record the Redis commands a page sends."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS") or ROOT / "tmp" / "artifacts")


def chromium_path() -> str | None:
    """Debian's chromium (CHROMIUM_PATH, else on PATH); never a downloaded browser."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    return found if found and os.access(found, os.X_OK) else None


def require_chromium() -> str:
    found = chromium_path()
    if found is None:
        message = "no chromium (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A ``bullmq-sync dashboard`` subprocess on a free loopback port."""

    def __init__(self, url: str | None, prefix: str, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        command = [sys.executable, "-m", "bullmq_sync", "dashboard", "--port", str(self.port)]
        if url is not None:
            command += ["--url", url]
        command += ["--prefix", prefix, *args]
        environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        environment.update(env or {})
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.first_line = self.process.stdout.readline() if self.process.stdout else ""
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    out = self.process.stdout.read() if self.process.stdout else ""
                    raise RuntimeError(f"dashboard did not start: {self.first_line}{out}")
                time.sleep(0.05)

    def stop(self) -> str:
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate(timeout=10)
        return self.first_line + (out or "")


@contextmanager
def serve(url: str | None, prefix: str, *args: str, **kwargs: Any) -> Iterator[Served]:
    served = Served(url, prefix, *args, **kwargs)
    try:
        yield served
    finally:
        served.stop()


def fill_failed(
    raw: redis.Redis, prefix: str, queue: str, count: int, reason: str = "boom"
) -> None:
    """``count`` failed jobs in BullMQ's layout (ids 1..count), written in pipelines."""
    now = int(time.time() * 1000)
    for start in range(1, count + 1, 5000):
        pipe = raw.pipeline(transaction=False)
        for i in range(start, min(start + 5000, count + 1)):
            key = f"{prefix}:{queue}:{i}"
            pipe.hset(
                key,
                mapping={
                    "name": "work",
                    "data": json.dumps({"n": i}),
                    "opts": json.dumps({"attempts": 1}),
                    "timestamp": now - (count - i) * 60_000 - 9000,
                    "delay": 0,
                    "priority": 0,
                    "processedOn": now - (count - i) * 60_000 - 5000,
                    "finishedOn": now - (count - i) * 60_000 - 4000,
                    "atm": 1,
                    "ats": 1,
                    "failedReason": f"{reason} {i}",
                    "stacktrace": json.dumps([f"Error: {reason}\n    at work (job.js:1:1)"]),
                },
            )
            pipe.zadd(f"{prefix}:{queue}:failed", {str(i): now - (count - i) * 60_000 - 4000})
        pipe.execute()
    raw.set(f"{prefix}:{queue}:id", count)
    raw.hset(f"{prefix}:{queue}:meta", mapping={"opts.maxLenEvents": 10000})


class CommandLog:
    """Redis MONITOR in a thread: the commands that mention ``needle`` (a unique prefix)."""

    def __init__(self, url: str, needle: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.needle = needle
        self.commands: list[list[str]] = []
        self._stop = f"dashboard-monitor-stop-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            self._ready.set()
            while True:
                entry = monitor.next_command()
                command = str(entry.get("command", ""))
                if self._stop in command:
                    return
                if self.needle in command:
                    self.commands.append(_split(command))

    def __enter__(self) -> CommandLog:
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.echo(self._stop)
        self._thread.join(10)
        self.client.close()

    def named(self, *names: str) -> list[list[str]]:
        wanted = {n.upper() for n in names}
        return [c for c in self.commands if c and c[0].upper() in wanted]


def _split(command: str) -> list[str]:
    # redis-py's monitor gives the command as one string of space-separated, quoted args
    import shlex

    try:
        return shlex.split(command)
    except ValueError:
        return command.split()
