"""Putting jobs into a queue: ``Queue.add`` and ``Queue.add_bulk`` (one script call each)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import log
from .connection import OUTCOME_TTL_MS
from .context import JobRef, StoredJob
from .errors import InvalidArgument, job_error
from .options import PreparedJob, prepare_job

if TYPE_CHECKING:
    from .context import QueueContext

ADD_COMMAND = "addJob"


@dataclass(frozen=True)
class Added:
    """One job of an add: its id and what was prepared; when the add was deduplicated, the
    existing owner as stored (``owner``, None if it vanished since) and the refused id."""

    job_id: str
    prepared: PreparedJob
    refused_id: str | None = None
    owner: StoredJob | None = None


def _args(job: PreparedJob) -> tuple[Any, ...]:
    return (job.custom_id or "", *job.script_fields(), job.dedup_json or "")


def bulk_entry(entry: Any) -> tuple[str, Any, Mapping[str, Any]]:
    """One ``add_bulk`` item: ``{"name", "data", "opts"}`` or a ``(name, data[, opts])`` tuple."""
    if isinstance(entry, Mapping):
        unknown = set(entry) - {"name", "data", "opts"}
        if unknown or "name" not in entry:
            raise InvalidArgument(
                f"a bulk job is {{'name', 'data', 'opts'}}, got keys {sorted(entry)}"
            )
        return entry["name"], entry.get("data"), entry.get("opts") or {}
    if isinstance(entry, (tuple, list)) and 1 <= len(entry) <= 3:
        name, data, opts = (*entry, None, None)[:3]
        return name, data, opts or {}
    raise InvalidArgument(f"a bulk job is a dict or a (name, data, opts) tuple, got {entry!r}")


def prepare(
    name: str,
    data: Any,
    opts: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> PreparedJob:
    """Merge an opts dict, keyword overrides and the queue's defaults; validate; encode."""
    if opts is not None and not isinstance(opts, Mapping):
        raise InvalidArgument(f"opts must be a dict of job options, got {type(opts).__name__}")
    merged: dict[str, Any] = dict(opts or {})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    if "parent" in merged and isinstance(merged["parent"], JobRef):
        parent_job = merged["parent"]
        merged["parent"] = {"id": parent_job.id, "queue": parent_job.queue_qualified_name}
    return prepare_job(name, data, merged, defaults)


def add_prepared(queue: QueueContext, jobs: Sequence[PreparedJob]) -> list[Added]:
    """Store prepared jobs atomically with one script call; what was stored, in order."""
    if not jobs:
        return []
    keys = queue.keys
    args: list[Any] = [keys.base, OUTCOME_TTL_MS, int(time.time() * 1000)]
    for job in jobs:
        args.extend(_args(job))
    started = time.perf_counter()
    reply = queue.connection.run_script(
        "addJobs",
        (
            keys.wait,
            keys.meta,
            keys.id,
            keys.delayed,
            keys.prioritized,
            keys.pc,
            keys.events,
            keys.marker,
            keys.active,
            keys.completed,
            keys.op(queue.next_token()),
        ),
        args,
    )
    status = int(reply[0])
    if status < 0:
        failed = jobs[int(reply[1]) - 1]
        error = job_error(
            status,
            queue=queue.name,
            job_id=failed.custom_id or "",
            command=ADD_COMMAND,
            parent_key=failed.parent_key,
        )
        log.refused(
            "job.add_refused",
            queue=queue.name,
            job_id=failed.custom_id or "",
            code=status,
            error=str(error),
        )
        raise error
    ids: list[str] = [str(i) for i in reply[1]]
    duplicates = {int(i) - 1 for i in reply[2]}
    deduplicated = _deduplicated(reply)
    elapsed = round((time.perf_counter() - started) * 1000, 3)
    result = []
    for index, (job, job_id) in enumerate(zip(jobs, ids, strict=True)):
        if index in deduplicated:
            result.append(
                _deduplicated_job(queue, job, job_id, *deduplicated[index], status, elapsed)
            )
            continue
        result.append(Added(job_id, job))
        duplicated = index in duplicates
        to_state = job.landing_state
        log.transition(
            "job.duplicated" if duplicated else "job.added",
            queue=queue.name,
            job_id=job_id,
            from_state=None,
            to_state=None if duplicated else to_state,
            replayed=status == 1,
            bulk=len(jobs) if len(jobs) > 1 else None,
            elapsed_ms=elapsed,
        )
    return result


def add(
    queue: QueueContext,
    name: str,
    data: Any,
    opts: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> Added:
    """``Queue.add``: one job, one script call."""
    return add_prepared(queue, [prepare(name, data, opts, overrides, defaults)])[0]


def add_bulk(
    queue: QueueContext, entries: Iterable[Any], defaults: Mapping[str, Any]
) -> list[Added]:
    """``Queue.add_bulk``: every job validated first, then all stored in one script call."""
    prepared = [prepare(*bulk_entry(entry), {}, defaults) for entry in entries]
    return add_prepared(queue, prepared)


# -- deduplication: an add answered with the existing owner of its deduplication id ---------


def _deduplicated(reply: Sequence[Any]) -> dict[int, tuple[str, Sequence[Any]]]:
    """Index of each deduplicated job -> (the id it would have had, the owner's flat hash)."""
    if len(reply) < 6:
        return {}
    return {
        int(index) - 1: (str(refused), owner)
        for index, refused, owner in zip(reply[3], reply[4], reply[5], strict=True)
    }


def _deduplicated_job(
    queue: QueueContext,
    job: PreparedJob,
    owner_id: str,
    refused_id: str,
    owner_hash: Sequence[Any],
    status: int,
    elapsed: float,
) -> Added:
    """A deduplicated add: the existing owner as stored (BullMQ returns its id)."""
    owner = None
    if owner_hash:  # else the owner vanished since (only possible on a replayed call)
        fields = {str(k): str(v) for k, v in zip(owner_hash[0::2], owner_hash[1::2], strict=True)}
        owner = StoredJob(owner_id, fields)
    log.transition(
        "job.deduplicated",
        queue=queue.name,
        job_id=owner_id,
        from_state=None,
        to_state=None,
        deduplication_id=job.deduplication_id,
        deduplicated_job_id=refused_id,
        replayed=status == 1,
        elapsed_ms=elapsed,
    )
    return Added(owner_id, job, refused_id, owner)


def get_deduplication_job_id(queue: QueueContext, dedup_id: str) -> str | None:
    """The id of the job that owns a deduplication id now, or None."""
    owner = queue.connection.execute("GET", queue.keys.dedup(_dedup_id(dedup_id)))
    return None if owner is None else str(owner)


def remove_deduplication_key(queue: QueueContext, dedup_id: str) -> int:
    """Forget a deduplication id so the next add with it is stored; 1 if a key went."""
    return int(queue.connection.execute("DEL", queue.keys.dedup(_dedup_id(dedup_id))))


def _dedup_id(dedup_id: object) -> str:
    """A deduplication id as BullMQ keys it (a non-empty string), else ``InvalidArgument``."""
    if not isinstance(dedup_id, str) or not dedup_id:
        raise InvalidArgument(f"deduplication id must be a non-empty string, got {dedup_id!r}")
    return dedup_id
