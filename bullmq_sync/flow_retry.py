"""Retry a failed flow in one call (beyond BullMQ): ``job.retry_tree()``.

A flow whose child failed ends with the child failed and, with ``failParentOnFailure``, its
parent (and their parents) failed too; without a policy the parent waits for the failed child
forever. ``retry_tree`` walks the tree under one job and, in ONE script call
(``lua/retryJobTree.lua``), puts every failed job back: leaves to wait/prioritized as
``Job.retry`` does, parents to waiting-children with the failed children's entries moved
back into their ``:dependencies``. Workers then run the flow to completion. Completed
children and jobs that are waiting or running are left as they are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import log
from .connection import OUTCOME_TTL_MS
from .errors import FlowSpansSlots, FlowTooLarge, InvalidArgument, job_error

if TYPE_CHECKING:
    from .context import QueueContext

DEFAULT_MAX_JOBS = 1000
"""How many jobs ``retry_tree`` visits at most by default (the script blocks Redis)."""

MAX_JOBS_LIMIT = 100_000
"""The highest ``max_jobs`` accepted."""

_OPTION_NAMES = {
    "resetAttemptsMade": "reset_attempts_made",
    "reset_attempts_made": "reset_attempts_made",
    "resetAttemptsStarted": "reset_attempts_started",
    "reset_attempts_started": "reset_attempts_started",
    "maxJobs": "max_jobs",
    "max_jobs": "max_jobs",
}

COMMAND = "retryJobTree"


@dataclass(frozen=True)
class RetriedJob:
    """One job ``retry_tree`` moved: where it lives, and from/to which state."""

    queue_key: str
    """``<prefix>:<queue>`` of the job."""
    job_id: str
    from_state: str
    to_state: str

    @property
    def queue_name(self) -> str:
        return self.queue_key.rpartition(":")[2]

    @property
    def key(self) -> str:
        return f"{self.queue_key}:{self.job_id}"


def retry_options(
    opts: Mapping[str, Any] | None,
    *,
    reset_attempts_made: bool,
    reset_attempts_started: bool,
    max_jobs: int,
) -> dict[str, Any]:
    """Merge keyword options with a camelCase dict; refuse unknown keys and bad values."""
    values: dict[str, Any] = {
        "reset_attempts_made": reset_attempts_made,
        "reset_attempts_started": reset_attempts_started,
        "max_jobs": max_jobs,
    }
    if opts is not None:
        if not isinstance(opts, Mapping):
            raise InvalidArgument(f"retry_tree options must be a dict, got {opts!r}")
        for name, value in opts.items():
            if name not in _OPTION_NAMES:
                raise InvalidArgument(
                    f"unknown retry_tree option {name!r}; accepted: "
                    "maxJobs, resetAttemptsMade, resetAttemptsStarted"
                )
            values[_OPTION_NAMES[name]] = value
    for flag in ("reset_attempts_made", "reset_attempts_started"):
        if not isinstance(values[flag], bool):
            raise InvalidArgument(f"{flag} must be True or False, got {values[flag]!r}")
    most = values["max_jobs"]
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_JOBS_LIMIT:
        raise InvalidArgument(
            f"max_jobs must be an integer from 1 to {MAX_JOBS_LIMIT}, got {most!r}"
        )
    return values


def cluster_tag(queue: QueueContext, job_id: str) -> str:
    """The hash tag a script must find on every key of a flow on Redis Cluster; "" off it."""
    from .cluster import ClusterConnection

    if not isinstance(queue.connection, ClusterConnection):
        return ""
    return queue.keys.hash_slot_tag() or queue.keys.job(job_id)


def retry_tree(queue: QueueContext, job_id: str, values: dict[str, Any]) -> list[RetriedJob]:
    """Move the job (failed or waiting for children) and every failed descendant back; the
    moves, the root's last when it moved itself."""
    root = queue.keys.job(job_id)
    started = time.perf_counter()
    reply = queue.connection.run_script(
        COMMAND,
        (root, queue.keys.op(queue.next_token())),
        (
            "1" if values["reset_attempts_made"] else "0",
            "1" if values["reset_attempts_started"] else "0",
            values["max_jobs"],
            OUTCOME_TTL_MS,
            cluster_tag(queue, job_id),
        ),
    )
    status = int(reply[0])
    if status < 0:
        _refuse(queue, job_id, status, reply[1], values["max_jobs"])
    moved = [RetriedJob(key.rpartition(":")[0], key.rpartition(":")[2], src, dst)
             for key, src, dst in json.loads(reply[1])]
    replayed = len(reply) > 2
    if log.enabled():
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        for entry in moved:
            log.transition(
                "job.retried",
                queue=entry.queue_name,
                job_id=entry.job_id,
                from_state=entry.from_state,
                to_state=entry.to_state,
                root=root,
                tree=True,
                reset_attempts_made=values["reset_attempts_made"],
                reset_attempts_started=values["reset_attempts_started"],
                replayed=replayed,
            )
        log.event("flow.retried", root=root, jobs=len(moved), replayed=replayed,
                  elapsed_ms=elapsed)
    return moved


def _refuse(queue: QueueContext, root_id: str, status: int, detail: Any, max_jobs: int) -> None:
    error: Exception
    if status == -101:
        error = FlowTooLarge(
            f"the flow under job {root_id} has more than {max_jobs} jobs to visit; "
            "pass a larger max_jobs (at most "
            f"{MAX_JOBS_LIMIT}) to retry it in one call",
            job_id=root_id,
            max_jobs=max_jobs,
        )
    elif status == -102:
        error = FlowSpansSlots(
            f"job {detail} of the flow under job {root_id} is outside the hash tag "
            f"{queue.keys.hash_slot_tag()!r}: on Redis Cluster a flow can only be retried in one "
            "call when every queue of it shares one hash tag (e.g. prefix '{app}')",
            job_id=root_id,
            job_key=str(detail),
        )
    elif status == -1:
        queue_key, _, job_id = str(detail).rpartition(":")
        error = job_error(-1, queue=queue_key.rpartition(":")[2], job_id=job_id, command=COMMAND)
    else:
        error = job_error(status, queue=queue.name, job_id=root_id, command=COMMAND,
                          state="failed or waiting-children")
    log.refused("job.retry_tree_refused", queue=queue.name, job_id=root_id, code=status,
                error=str(error))
    raise error
