"""Live updates: Server-Sent Events fed by the queues' own event streams (XREAD BLOCK).

One SSE connection per open page reads the streams of the queues that page shows; when
events arrive it sends, at most every ``min_interval`` seconds per queue, fresh counts for
that queue (and the watched job's state). Browsers never poll counts. A connection ends
after ``lifetime`` seconds and the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import data

if TYPE_CHECKING:
    from ..connection import Connection
    from ..queue import Queue

BLOCK_MS = 5000
RECONNECT_MS = 1000
BUSY_RETRY_MS = 15000
"""When every stream slot is taken, the browser reconnects after this long."""


def sse(payload: dict[str, Any] | None = None, comment: str | None = None) -> str:
    """One SSE message (JSON data; ``<`` is escaped so no consumer can read it as markup)."""
    if comment is not None:
        return f": {comment}\n\n"
    text = json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c")
    return f"data: {text}\n\n"


def stream(
    connection: Connection,
    queues: list[Queue],
    job_id: str | None,
    state_of: Callable[[Queue, str], str],
    lifetime: float = 60.0,
    min_interval: float = 0.25,
) -> Iterator[str]:
    """Yield SSE text until ``lifetime`` runs out (or the client goes away)."""
    yield f"retry: {RECONNECT_MS}\n\n"
    if not queues:
        return
    by_key = {q.keys.events: q for q in queues}
    reader = connection.blocking_reader(queues[0].keys.events, socket_timeout=BLOCK_MS / 1000 + 5)
    last = dict.fromkeys(by_key, "$")
    deadline = time.monotonic() + lifetime
    try:
        while time.monotonic() < deadline:
            block = max(1, min(BLOCK_MS, int((deadline - time.monotonic()) * 1000)))
            reply = reader.call(
                "XREAD", "COUNT", 500, "BLOCK", block, "STREAMS", *last, *last.values()
            )
            if reply is None:
                return
            if not reply:
                yield sse(comment="idle")
                continue
            touched: dict[str, list[dict[str, str]]] = {}
            for key, entries in _streams(reply):
                for entry_id, fields in entries:
                    last[key] = entry_id
                    pairs = _fields(fields)
                    touched.setdefault(key, []).append(
                        {"event": str(pairs.get("event", "")), "jobId": str(pairs.get("jobId", ""))}
                    )
            for key, events in touched.items():
                queue = by_key[key]
                counts_replies = connection.pipeline(data.count_commands(queue))
                counts, paused = data.read_counts(counts_replies)
                payload: dict[str, Any] = {
                    "queue": queue.name,
                    "counts": counts,
                    "paused": paused,
                    "events": events[-20:],
                }
                if job_id is not None and any(e["jobId"] == job_id for e in events):
                    payload["job"] = {"id": job_id, "state": state_of(queue, job_id)}
                yield sse(payload)
            time.sleep(min_interval)  # coalesce bursts: one update per queue per interval
    finally:
        reader.close()


def _streams(reply: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    items = reply.items() if isinstance(reply, dict) else reply
    return [(str(key), [(str(i), f) for i, f in entries]) for key, entries in items]


def _fields(fields: Any) -> dict[str, str]:
    if isinstance(fields, dict):
        return {str(k): str(v) for k, v in fields.items()}
    flat = list(fields)
    return {str(k): str(v) for k, v in zip(flat[::2], flat[1::2], strict=False)}
