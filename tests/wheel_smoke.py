"""Build check: install the wheel in a fresh venv and retry a job with the installed package.

    python tests/wheel_smoke.py DIST_DIR

Proves the Lua scripts (and the dashboard's templates and static files) ship inside the wheel (lua/ is mapped to bullmq_sync.lua) and that the
package works from site-packages, away from this source tree.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redis_server import LocalRedis, redis_server_binary  # noqa: E402

SCRIPT = r"""
import json, sys, time
import redis
import bullmq_sync
from bullmq_sync import Queue, Job
assert "site-packages" in bullmq_sync.__file__, bullmq_sync.__file__
raw = redis.Redis.from_url(sys.argv[1], decode_responses=True)
now = int(time.time() * 1000)
raw.hset("wheel:q:1", mapping={"name": "n", "data": "{}", "opts": "{}", "timestamp": now,
         "priority": 0, "delay": 0, "finishedOn": now, "failedReason": "x"})
raw.zadd("wheel:q:failed", {"1": now})
with Queue("q", connection=sys.argv[1], prefix="wheel") as q:
    Job.from_id(q, "1").retry()
assert raw.lrange("wheel:q:wait", 0, -1) == ["1"], raw.lrange("wheel:q:wait", 0, -1)
print("wheel smoke: retried job 1 with", bullmq_sync.__file__)

# The dashboard's templates and static files ship in the wheel (the `dashboard` extra).
from bullmq_sync.dashboard import Dashboard
app = Dashboard(sys.argv[1], prefix="wheel")
for path, needle in (("/", b"q"), ("/static/dashboard.js", b"EventSource"),
                     ("/static/dashboard.css", b"--accent")):
    seen = []
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": ""}
    body = b"".join(app(env, lambda status, headers: seen.append(status)))
    assert seen == ["200 OK"] and needle in body, (path, seen)
print("wheel smoke: dashboard pages and static files served from the wheel")
"""


def main() -> None:
    [wheel] = glob.glob(os.path.join(sys.argv[1], "bullmq_sync-*.whl"))
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("no redis-server binary")
    server = LocalRedis(binary).start()
    try:
        with tempfile.TemporaryDirectory() as home:
            venv.create(home, with_pip=True)
            python = os.path.join(home, "bin", "python")
            subprocess.run([python, "-m", "pip", "install", "-q", f"{wheel}[dashboard]"], check=True)
            subprocess.run([python, "-c", SCRIPT, server.url], check=True, cwd=home)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
