"""What the dashboard reads: queues under a prefix, counts, one page of a state, one job.

Every read is bounded: a page is one range command (ZREVRANGE or LRANGE over exactly the rows
shown) plus one HMGET per row, so its cost does not depend on how many jobs the state holds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BullMQSyncError
from ..keys import split_job_key
from ..workers_list import count_workers

if TYPE_CHECKING:
    from ..connection import Connection
    from ..queue import Queue

STATES = ("waiting", "prioritized", "delayed", "active", "waiting-children", "completed", "failed")
"""The states shown, in the order of a job's life."""

_LIST_STATES = frozenset({"wait", "paused", "active"})
_STRUCTURES = {"waiting": ("wait", "paused")}
"""Structures behind a state (``paused`` is a BullMQ 5 list that resume merges into wait)."""

ROW_FIELDS = (
    "name",
    "timestamp",
    "processedOn",
    "finishedOn",
    "atm",
    "attemptsMade",
    "failedReason",
    "delay",
    "priority",
    "progress",
)
MAX_TEXT = 300
"""Characters of a failed reason shown in a list (the job page shows all of it)."""
MAX_TREE_NODES = 200
MAX_CHILDREN = 100
MAX_LOG_ROWS = 200


@dataclass
class QueueSummary:
    name: str
    counts: dict[str, int]
    paused: bool
    workers: int


@dataclass
class Row:
    id: str
    name: str
    timestamp: int | None
    processed_on: int | None
    finished_on: int | None
    attempts_made: int
    failed_reason: str
    delay: int
    priority: int
    progress: str


@dataclass
class Page:
    state: str
    rows: list[Row]
    total: int
    page: int
    per_page: int
    counts: dict[str, int]
    paused: bool

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass
class TreeNode:
    queue: str
    id: str
    name: str
    state: str
    current: bool = False
    link: bool = True
    children: list[TreeNode] = field(default_factory=list)
    more: int = 0


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def worker_counts(connection: Connection, queues: list[Queue]) -> dict[str, int]:
    """Workers per queue (``get_workers``' count) from one CLIENT LIST; none where the
    server refuses CLIENT LIST (some managed Redis), rather than failing the page."""
    try:
        return count_workers(connection, [queue.keys for queue in queues])
    except BullMQSyncError:
        return {}


class QueueDirectory:
    """Queue names under a prefix, found from BullMQ's own keys (``<prefix>:<q>:meta`` and
    ``<prefix>:<q>:id``) with SCAN, cached for ``ttl`` seconds."""

    def __init__(self, connection: Connection, prefix: str, ttl: float = 10.0) -> None:
        self.connection = connection
        self.prefix = prefix
        self.ttl = ttl
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._at = float("-inf")

    def names(self, refresh: bool = False) -> list[str]:
        with self._lock:
            if not refresh and time.monotonic() - self._at < self.ttl:
                return list(self._names)
        found = self._scan()
        with self._lock:
            self._names, self._at = found, time.monotonic()
            return list(found)

    def _scan(self) -> list[str]:
        pattern = _glob_escape(self.prefix) + ":*:[mi][ed]*"
        start = len(self.prefix) + 1
        names: set[str] = set()
        cursor = "0"
        while True:
            cursor, keys = self.connection.execute("SCAN", cursor, "MATCH", pattern, "COUNT", 5000)
            for key in keys:
                name, _, suffix = str(key)[start:].partition(":")
                if suffix in ("meta", "id") and name:
                    names.add(name)
            if str(cursor) == "0":
                return sorted(names)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def count_commands(queue: Queue) -> list[tuple[str, ...]]:
    commands: list[tuple[str, ...]] = []
    for state in STATES:
        for structure in _STRUCTURES.get(state, (state,)):
            key = queue.keys.state(structure)
            commands.append(("LLEN", key) if structure in _LIST_STATES else ("ZCARD", key))
    commands.append(("HEXISTS", queue.keys.meta, "paused"))
    return commands


def read_counts(replies: list[Any]) -> tuple[dict[str, int], bool]:
    it = iter(replies)
    counts = {
        state: sum(int(next(it)) for _ in _STRUCTURES.get(state, (state,))) for state in STATES
    }
    return counts, bool(int(next(it)))


def overview(connection: Connection, queues: list[Queue], prefix: str) -> list[QueueSummary]:
    """Counts, paused flag and workers of every queue: one pipeline plus one CLIENT LIST."""
    commands: list[tuple[str, ...]] = []
    for queue in queues:
        commands.extend(count_commands(queue))
    replies = connection.pipeline(commands) if commands else []
    workers = worker_counts(connection, queues) if queues else {}
    width = len(commands) // len(queues) if queues else 0
    out = []
    for index, queue in enumerate(queues):
        counts, paused = read_counts(replies[index * width : (index + 1) * width])
        out.append(QueueSummary(queue.name, counts, paused, workers.get(queue.name, 0)))
    return out


def page(queue: Queue, state: str, number: int, per_page: int) -> Page:
    """One page of a state, newest first: counts and the id range in one round trip, the
    rows' fields in a second."""
    start = (number - 1) * per_page
    stop = start + per_page - 1
    structures = _STRUCTURES.get(state, (state,))
    first = queue.keys.state(structures[0])
    if structures[0] in _LIST_STATES:
        range_cmd: tuple[Any, ...] = ("LRANGE", first, start, stop)
    else:
        range_cmd = ("ZREVRANGE", first, start, stop)
    replies = queue.connection.pipeline([*count_commands(queue), range_cmd])
    counts, paused = read_counts(replies[:-1])
    ids = [str(i) for i in replies[-1]]
    if len(structures) > 1 and len(ids) < per_page:
        # the legacy ``paused`` list follows wait (it is older); rarely non-empty
        wait_len = int(queue.connection.execute("LLEN", first))
        offset = max(0, start - wait_len)
        more = queue.connection.execute(
            "LRANGE", queue.keys.state(structures[1]), offset, offset + per_page - len(ids) - 1
        )
        ids.extend(str(i) for i in more)
    rows = _rows(queue, ids)
    return Page(state, rows, counts[state], number, per_page, counts, paused)


def _rows(queue: Queue, ids: list[str]) -> list[Row]:
    if not ids:
        return []
    replies = queue.connection.pipeline(
        [("HMGET", queue.keys.job(job_id), *ROW_FIELDS) for job_id in ids]
    )
    rows = []
    for job_id, values in zip(ids, replies, strict=True):
        f = dict(zip(ROW_FIELDS, values, strict=True))
        reason = str(f["failedReason"] or "")
        rows.append(
            Row(
                id=job_id,
                name=str(f["name"] or ""),
                timestamp=_int(f["timestamp"]),
                processed_on=_int(f["processedOn"]),
                finished_on=_int(f["finishedOn"]),
                attempts_made=_int(f["atm"] if f["atm"] is not None else f["attemptsMade"]) or 0,
                failed_reason=reason[:MAX_TEXT] + ("…" if len(reason) > MAX_TEXT else ""),
                delay=_int(f["delay"]) or 0,
                priority=_int(f["priority"]) or 0,
                progress=str(f["progress"] or ""),
            )
        )
    return rows


MAX_SHOWN = 200_000
"""Characters of one JSON field shown on a job page (a huge payload must not stall it)."""


def pretty(value: Any) -> str:
    """Formatted JSON for the page (text, escaped by the template like everything else)."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_SHOWN:
        text = text[:MAX_SHOWN] + f"\n… ({len(text) - MAX_SHOWN:,} more characters not shown)"
    return text


@dataclass
class JobLink:
    queue: str
    id: str
    same_prefix: bool
    key: str


def parse_job_key(key: str, prefix: str) -> JobLink:
    """``<prefix>:<queue>:<id>`` as a link (only jobs under our prefix are linked)."""
    base, job_id = split_job_key(key)
    if base.startswith(prefix + ":"):
        queue = base[len(prefix) + 1 : -1]
        if queue and ":" not in queue:
            return JobLink(queue, job_id, True, key)
    return JobLink("", job_id, False, key)


def children(queue: Queue, job_id: str) -> dict[str, Any]:
    """A parent's children by outcome (bounded samples) and their totals."""
    keys = queue.keys
    pending, processed, failed, ignored = (
        keys.job_sub(job_id, s) for s in ("dependencies", "processed", "failed", "unsuccessful")
    )
    replies = queue.connection.pipeline(
        [
            ("SSCAN", pending, 0, "COUNT", MAX_CHILDREN),
            ("SCARD", pending),
            ("HSCAN", processed, 0, "COUNT", MAX_CHILDREN),
            ("HLEN", processed),
            ("HSCAN", failed, 0, "COUNT", MAX_CHILDREN),
            ("HLEN", failed),
            ("ZRANGE", ignored, 0, MAX_CHILDREN - 1),
            ("ZCARD", ignored),
        ]
    )
    return {
        "pending": [str(k) for k in replies[0][1]][:MAX_CHILDREN],
        "pending_total": int(replies[1]),
        "processed": _pairs(replies[2][1])[:MAX_CHILDREN],
        "processed_total": int(replies[3]),
        "failed": _pairs(replies[4][1])[:MAX_CHILDREN],
        "failed_total": int(replies[5]),
        "ignored": [str(k) for k in replies[6]],
        "ignored_total": int(replies[7]),
    }


def _pairs(flat: Any) -> list[tuple[str, str]]:
    if isinstance(flat, dict):
        return [(str(k), str(v)) for k, v in flat.items()]
    items = list(flat)
    return [(str(items[i]), str(items[i + 1])) for i in range(0, len(items) - 1, 2)]


def flow_tree(
    connection: Connection, prefix: str, queue_name: str, job_id: str, state_of: Any
) -> TreeNode | None:
    """The flow the job belongs to, from its top parent down (``MAX_TREE_NODES`` at most);
    None for a job that is in no flow."""
    from ..queue import Queue

    def load(queue: str, jid: str) -> tuple[str, str | None] | None:
        name, parent_key = connection.pipeline(
            [("HMGET", f"{prefix}:{queue}:{jid}", "name", "parentKey")]
        )[0]
        if name is None and parent_key is None:
            return None
        return str(name or ""), (str(parent_key) if parent_key else None)

    top_queue, top_id = queue_name, job_id
    seen = {(top_queue, top_id)}
    loaded = load(top_queue, top_id)
    if loaded is None:
        return None
    for _ in range(50):  # a flow deeper than this is drawn from 50 levels up
        _, parent_key = loaded if loaded else ("", None)
        if not parent_key:
            break
        link = parse_job_key(parent_key, prefix)
        if not link.same_prefix or (link.queue, link.id) in seen:
            break
        up = load(link.queue, link.id)
        if up is None:
            break
        top_queue, top_id, loaded = link.queue, link.id, up
        seen.add((top_queue, top_id))

    budget = [MAX_TREE_NODES]
    queues: dict[str, Queue] = {}

    def node(queue: str, jid: str, depth: int) -> TreeNode:
        budget[0] -= 1
        info = load(queue, jid)
        q = queues.get(queue)
        if q is None:
            q = queues[queue] = Queue(queue, connection=connection, prefix=prefix)
        tree = TreeNode(
            queue,
            jid,
            info[0] if info else "",
            state_of(q, jid) if info else "missing",
            current=(queue, jid) == (queue_name, job_id),
        )
        if info is None or depth > 20:
            return tree
        kids = children(q, jid)
        keys = kids["pending"] + [k for k, _ in kids["processed"]] + [k for k, _ in kids["failed"]]
        keys += kids["ignored"]
        total = (
            kids["pending_total"]
            + kids["processed_total"]
            + kids["failed_total"]
            + kids["ignored_total"]
        )
        for key in keys:
            if budget[0] <= 0:
                break
            link = parse_job_key(key, prefix)
            if link.same_prefix:
                tree.children.append(node(link.queue, link.id, depth + 1))
        tree.more = max(0, total - len(tree.children))
        return tree

    root = node(top_queue, top_id, 0)
    if not root.children and root.current and loaded and not loaded[1]:
        return None
    return root
