"""Reading a queue: jobs by id or by state, counts, states, logs. Reads only, no transitions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .context import StoredJob, pairs
from .errors import InvalidArgument
from .keys import validate_job_id
from .options import PRIORITY_LIMIT as MAX_PRIORITY
from .options import flag
from .states import JobState

if TYPE_CHECKING:
    from .context import QueueContext

DEFAULT_TYPES = (
    "active",
    "completed",
    "delayed",
    "failed",
    "prioritized",
    "waiting",
    "waiting-children",
)
"""BullMQ 6's job types when none are asked for."""

_LISTS = frozenset({"wait", "paused", "active"})
_ALIASES = {"wait": "waiting"}
_KNOWN = frozenset(DEFAULT_TYPES) | {"wait", "paused"}


def job_types(types: Iterable[str | JobState] | str | JobState | None) -> list[str]:
    """Requested types as BullMQ's names, deduplicated in order; all of them when empty."""
    if types is None:
        return list(DEFAULT_TYPES)
    if isinstance(types, (str, JobState)):
        types = [types]
    out: list[str] = []
    for item in types:
        name = item.value if isinstance(item, JobState) else item
        if not isinstance(name, str) or name not in _KNOWN:
            raise InvalidArgument(f"unknown job type {item!r}; expected one of {sorted(_KNOWN)}")
        if name not in out:
            out.append(name)
    return out or list(DEFAULT_TYPES)


def _structures(job_type: str, ascending: bool) -> list[str]:
    """Redis structures holding a type. Waiting includes a legacy v5 ``paused`` list."""
    if job_type in ("waiting", "wait"):
        # A legacy list runs before wait (resume appends it at the tail): it is the older one.
        return ["paused", "wait"] if ascending else ["wait", "paused"]
    return [job_type]


def get_job_counts(queue: QueueContext, *types: str | JobState) -> dict[str, int]:
    """Counts per type, read in one round trip."""
    names = job_types(types or None)
    commands: list[tuple[str, ...]] = []
    spans: list[int] = []
    for name in names:
        structures = _structures(name, True)
        spans.append(len(structures))
        for structure in structures:
            key = queue.keys.state(structure)
            commands.append(("LLEN", key) if structure in _LISTS else ("ZCARD", key))
    replies = iter(queue.connection.pipeline(commands))
    return {
        name: sum(int(next(replies)) for _ in range(span))
        for name, span in zip(names, spans, strict=True)
    }


def get_job_count_by_types(queue: QueueContext, *types: str | JobState) -> int:
    """The sum of the counts of these types."""
    return sum(get_job_counts(queue, *types).values())


def count(queue: QueueContext) -> int:
    """Jobs still to be processed: waiting, delayed, prioritized and waiting-children."""
    return get_job_count_by_types(queue, "waiting", "delayed", "prioritized", "waiting-children")


def _index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    return value


def get_jobs(
    queue: QueueContext,
    types: Iterable[str | JobState] | str | JobState | None = None,
    start: int = 0,
    end: int = -1,
    asc: bool = False,
) -> list[StoredJob]:
    """Job hashes of the given types, each type paged by ``start``..``end`` (inclusive), read
    atomically; ``Job.from_hash`` makes Jobs of them."""
    flag("asc", asc)
    names = job_types(types)
    first, last = _index(start, "start"), _index(end, "end")
    structures: list[str] = []
    for name in names:
        for structure in _structures(name, asc):
            if structure not in structures:
                structures.append(structure)
    reply = queue.connection.run_script(
        "getJobsInStates", (queue.keys.base,), (first, last, "1" if asc else "0", *structures)
    )
    seen: set[str] = set()
    jobs: list[StoredJob] = []
    for entries in reply:
        for job_id, flat in entries:
            if job_id in seen:
                continue
            seen.add(job_id)
            jobs.append(StoredJob(job_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return jobs


def get_job_state(queue: QueueContext, job_id: str | int) -> JobState:
    """The state of a job (``JobState.UNKNOWN`` when it is in none)."""
    job_id = validate_job_id(job_id)
    keys = queue.keys
    state = queue.connection.run_script(
        "getJobState",
        (
            keys.completed,
            keys.failed,
            keys.delayed,
            keys.prioritized,
            keys.active,
            keys.wait,
            keys.paused,
            keys.waiting_children,
        ),
        (job_id,),
    )
    return JobState(state)


def get_job_logs(
    queue: QueueContext, job_id: str | int, start: int = 0, end: int = -1, asc: bool = True
) -> tuple[list[str], int]:
    """A page of a job's log rows (oldest first unless ``asc=False``) and their total count."""
    flag("asc", asc)
    job_id = validate_job_id(job_id)
    first, last = _index(start, "start"), _index(end, "end")
    key = queue.keys.job_sub(job_id, "logs")
    if asc:
        page_cmd: Sequence[Any] = ("LRANGE", key, first, last)
    else:
        page_cmd = ("LRANGE", key, -(last + 1), -(first + 1))
    rows, total = queue.connection.pipeline([page_cmd, ("LLEN", key)])
    rows = list(rows)
    if not asc:
        rows.reverse()
    return rows, int(total)


def read_job(queue: QueueContext, job_id: str) -> dict[str, str] | None:
    """The fields of a job's hash, or None when the queue has no job with that id."""
    raw = queue.connection.execute("HGETALL", queue.keys.job(job_id))
    return pairs(raw) if raw else None


def get_children_values(queue: QueueContext, job_id: str) -> dict[str, Any]:
    """Return values of a parent's finished children, keyed by child job key (``:processed``)."""
    raw = queue.connection.execute("HGETALL", queue.keys.job_sub(job_id, "processed"))
    return {key: _json(value) for key, value in pairs(raw or {}).items()}


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def get_dependencies_count(queue: QueueContext, job_id: str) -> dict[str, int]:
    """How many children of a parent are processed, unprocessed, failed and ignored."""
    keys = queue.keys
    processed, unprocessed, failed, ignored = queue.connection.pipeline(
        [
            ("HLEN", keys.job_sub(job_id, "processed")),
            ("SCARD", keys.job_sub(job_id, "dependencies")),
            ("ZCARD", keys.job_sub(job_id, "unsuccessful")),
            ("HLEN", keys.job_sub(job_id, "failed")),
        ]
    )
    return {
        "processed": int(processed),
        "unprocessed": int(unprocessed),
        "failed": int(failed),
        "ignored": int(ignored),
    }


# -- per-state counts, counts per priority, trimming events (BullMQ's queue-getters) -------


def get_delayed_count(queue: QueueContext, timestamp: int | None = None) -> int:
    """Delayed jobs; with ``timestamp`` (ms) only those due strictly before it."""
    if timestamp is None:
        return get_job_count_by_types(queue, "delayed")
    value: object = timestamp
    if isinstance(value, float) and value.is_integer():
        timestamp = int(value)  # a whole float is a safe integer to Node too
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or abs(timestamp) > 2**53 - 1:
        raise InvalidArgument("timestamp must be a safe integer in milliseconds")
    # A delayed score is due_ms * 4096 plus a 12-bit tie-breaker: every member below the
    # cutoff's first score is due earlier.
    return int(queue.connection.execute("ZCOUNT", queue.keys.delayed, "-inf", timestamp * 4096 - 1))


def priorities_of(priorities: Iterable[int]) -> list[int]:
    """The distinct priorities asked for, in order, each an int in 0..2**21."""
    if isinstance(priorities, (str, bytes, int)) or not isinstance(priorities, Iterable):
        raise InvalidArgument(f"priorities must be a list of integers, got {priorities!r}")
    out: list[int] = []
    for value in priorities:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
            raise InvalidArgument(
                f"a priority must be an integer from 0 to {MAX_PRIORITY}, got {value!r}"
            )
        if value not in out:
            out.append(value)
    return out


def get_counts_per_priority(queue: QueueContext, priorities: Iterable[int]) -> dict[int, int]:
    """``{priority: jobs waiting at it}``; priority 0 counts the wait list (one atomic read)."""
    asked = priorities_of(priorities)
    if not asked:
        return {}
    keys = queue.keys
    counts = queue.connection.run_script("countsPerPriority", (keys.wait, keys.prioritized), asked)
    return {priority: int(count) for priority, count in zip(asked, counts, strict=True)}


def trim_events(queue: QueueContext, max_length: int) -> int:
    """Trim the event stream to about ``max_length`` entries (XTRIM MAXLEN ~); how many went."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
        raise InvalidArgument(f"max_length must be an integer >= 0, got {max_length!r}")
    return int(queue.connection.execute("XTRIM", queue.keys.events, "MAXLEN", "~", max_length))
