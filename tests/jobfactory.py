"""Write BullMQ-shaped jobs straight into Redis, as Node BullMQ 6.7 leaves them.

Used where a test needs a job in an exact state without running a producer and a worker
(the interop tests do the real thing with Node BullMQ).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis


def put_job(
    raw: redis.Redis,
    prefix: str,
    queue: str,
    job_id: str,
    *,
    state: str = "failed",
    priority: int = 0,
    lifo: bool = False,
    parent_key: str | None = None,
    parent_flag: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Create job ``job_id`` in ``state`` (failed, completed, wait, active, delayed)."""
    base = f"{prefix}:{queue}:"
    now = int(time.time() * 1000)
    opts: dict[str, Any] = {"attempts": 1}
    if lifo:
        opts["lifo"] = True
    if priority:
        opts["priority"] = priority
    fields: dict[str, Any] = {
        "name": "work",
        "data": json.dumps({"n": job_id}),
        "opts": json.dumps(opts),
        "timestamp": now - 1000,
        "delay": 0,
        "priority": priority,
        "processedOn": now - 500,
        "ats": 1,
        "atm": 1,
    }
    if state == "failed":
        fields.update(finishedOn=now, failedReason="boom", stacktrace=json.dumps(["Error: boom"]))
        raw.zadd(base + "failed", {job_id: now})
    elif state == "completed":
        fields.update(finishedOn=now, returnvalue=json.dumps({"ok": True}))
        raw.zadd(base + "completed", {job_id: now})
    elif state == "wait":
        raw.lpush(base + "wait", job_id)
    elif state == "active":
        raw.lpush(base + "active", job_id)
        raw.set(base + job_id + ":lock", "token", px=30000)
    elif state == "delayed":
        raw.zadd(base + "delayed", {job_id: (now + 60000) * 4096})
    if parent_key:
        parent = {"id": parent_key.rsplit(":", 1)[1], "queueKey": parent_key.rsplit(":", 1)[0]}
        if parent_flag:
            parent[parent_flag] = True
        fields.update(parentKey=parent_key, parent=json.dumps(parent))
    fields.update(extra or {})
    raw.hset(base + job_id, mapping=fields)
    return job_id


def snapshot(raw: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` with its type, value dump and TTL (for 'unchanged' checks)."""
    result: dict[str, Any] = {}
    for key in sorted(raw.scan_iter(match=f"{prefix}:*", count=1000)):
        result[key] = (raw.type(key), raw.dump(key), raw.pttl(key) > 0)
    return result
