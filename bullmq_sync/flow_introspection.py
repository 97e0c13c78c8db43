"""A parent's view of its children, as BullMQ 6.7 gives it: ``get_dependencies``,
``get_ignored_children_failures``, ``remove_unprocessed_children`` and ``FlowProducer.get_flow``.

Reads are one pipelined round trip; ``remove_unprocessed_children`` is one script call
(``lua/removeUnprocessedChildren.lua``), exactly once, logged per removed job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import log
from .connection import OUTCOME_TTL_MS
from .context import pairs
from .errors import FlowSpansSlots, InvalidArgument
from .flow_retry import cluster_tag
from .options import whole_number

if TYPE_CHECKING:
    from .context import QueueContext

DEPENDENCY_TYPES = ("processed", "unprocessed", "ignored", "failed")
"""The four lists of a parent's children, in the order BullMQ fills its reply."""

_PAGE_KEYS = frozenset({"cursor", "count"})
_DEFAULT_PAGE = {"cursor": 0, "count": 20}
_FLOW_KEYS = {
    "id": "id",
    "queueName": "queue_name",
    "queue_name": "queue_name",
    "prefix": "prefix",
    "depth": "depth",
    "maxChildren": "max_children",
    "max_children": "max_children",
}


def dependency_pages(opts: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Validate BullMQ's ``DependenciesOpts``: requested type -> (cursor, count)."""
    if not isinstance(opts, Mapping):
        raise InvalidArgument(f"getDependencies options must be a dict, got {opts!r}")
    unknown = sorted(map(str, set(opts) - set(DEPENDENCY_TYPES)))
    if unknown:
        raise InvalidArgument(
            f"unknown getDependencies option(s) {unknown}; accepted: {list(DEPENDENCY_TYPES)}"
        )
    pages: dict[str, tuple[int, int]] = {}
    for kind in DEPENDENCY_TYPES:
        page = opts.get(kind)
        if page is None or page is False:
            continue
        if page is True:
            page = {}
        if not isinstance(page, Mapping):
            raise InvalidArgument(f"{kind} must be {{'cursor': int, 'count': int}}, got {page!r}")
        bad = sorted(map(str, set(page) - _PAGE_KEYS))
        if bad:
            raise InvalidArgument(
                f"unknown {kind} option(s) {bad}; accepted: ['count', 'cursor']"
            )
        merged = {**_DEFAULT_PAGE, **page}
        pages[kind] = (
            whole_number(f"{kind}.cursor", merged["cursor"], 0),
            whole_number(f"{kind}.count", merged["count"], 1),
        )
    return pages


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def get_dependencies(
    queue: QueueContext, job_id: str, pages: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """BullMQ ``Job.getDependencies``: every child key (no pages), or the requested pages."""
    keys = queue.keys
    sub = {
        "processed": keys.job_sub(job_id, "processed"),
        "unprocessed": keys.job_sub(job_id, "dependencies"),
        "ignored": keys.job_sub(job_id, "failed"),
        "failed": keys.job_sub(job_id, "unsuccessful"),
    }
    connection = queue.connection
    if not pages:
        processed, unprocessed, ignored, failed = connection.pipeline(
            [
                ("HGETALL", sub["processed"]),
                ("SMEMBERS", sub["unprocessed"]),
                ("HGETALL", sub["ignored"]),
                ("ZRANGE", sub["failed"], 0, -1),
            ]
        )
        return {
            "processed": {k: _json(v) for k, v in pairs(processed or {}).items()},
            "unprocessed": list(unprocessed or []),
            "failed": list(failed or []),
            "ignored": dict(pairs(ignored or {})),
        }

    commands: list[tuple[Any, ...]] = []
    for kind, (cursor, count) in pages.items():
        if kind == "processed" or kind == "ignored":
            commands.append(("HSCAN", sub[kind], cursor, "COUNT", count))
        elif kind == "unprocessed":
            commands.append(("SSCAN", sub[kind], cursor, "COUNT", count))
        else:
            # the window [cursor, cursor + count - 1]: the next page starts at the cursor
            # BullMQ returns (BullMQ 6.7 itself ends every page at count - 1)
            commands.append(("ZRANGE", sub[kind], cursor, cursor + count - 1))
    replies = dict(zip(pages, connection.pipeline(commands), strict=True))
    result: dict[str, Any] = {}
    if "processed" in replies:
        cursor, flat = replies["processed"]
        result["processed"] = {k: _json(v) for k, v in pairs(flat).items()}
        result["nextProcessedCursor"] = int(cursor)
    if "ignored" in replies:
        cursor, flat = replies["ignored"]
        result["ignored"] = dict(pairs(flat))
        result["nextIgnoredCursor"] = int(cursor)
    if "failed" in replies:
        cursor, count = pages["failed"]
        result["failed"] = list(replies["failed"])
        result["nextFailedCursor"] = cursor + count
    if "unprocessed" in replies:
        cursor, members = replies["unprocessed"]
        result["unprocessed"] = list(members)
        result["nextUnprocessedCursor"] = int(cursor)
    return result


def get_ignored_children_failures(queue: QueueContext, job_id: str) -> dict[str, str]:
    """Failure reasons of children whose failure the parent ignored, by child job key."""
    raw = queue.connection.execute("HGETALL", queue.keys.job_sub(job_id, "failed"))
    return pairs(raw or {})


def parse_node_key(key: str) -> tuple[str, str, str]:
    """``"bull:q:42"`` -> (prefix, queue name, id), as BullMQ splits a child key."""
    head, sep, job_id = key.rpartition(":")
    prefix, sep2, queue_name = head.rpartition(":")
    if not sep or not sep2:
        parts = [*key.split(":"), "", "", ""][:3]
        return parts[0], parts[1], parts[2]
    return prefix, queue_name, job_id


def _queue_of(job_key: str) -> tuple[str, str]:
    _, queue_name, job_id = parse_node_key(job_key)
    return queue_name, job_id


def remove_unprocessed_children(queue: QueueContext, parent_id: str) -> int:
    """Delete the children still pending (not locked, not failed); how many jobs went."""
    parent_key = queue.keys.job(parent_id)
    reply = queue.connection.run_script(
        "removeUnprocessedChildren",
        (parent_key, queue.keys.op(queue.next_token())),
        (OUTCOME_TTL_MS, cluster_tag(queue, parent_id)),
    )
    if isinstance(reply, list):  # {-102, jobKey}: a child in another slot, nothing changed
        raise FlowSpansSlots(
            f"child {reply[1]} of job {parent_id} is outside the hash tag "
            f"{queue.keys.hash_slot_tag()!r}: on Redis Cluster its pending children can only be "
            "removed in one call when every queue of the flow shares one hash tag",
            job_id=parent_id,
            job_key=str(reply[1]),
        )
    outcome = json.loads(reply)
    removed = outcome.get("removed") or []
    released = outcome.get("released") or []
    replayed = bool(outcome.get("replayed"))
    if log.enabled():
        for job_key, prev in removed:
            queue_name, job_id = _queue_of(job_key)
            log.transition(
                "job.removed",
                queue=queue_name,
                job_id=job_id,
                from_state=prev,
                to_state=None,
                parent=parent_key,
                replayed=replayed,
            )
        for released_key in released:
            queue_name, job_id = _queue_of(released_key)
            log.transition(
                "job.waiting",
                queue=queue_name,
                job_id=job_id,
                from_state="waiting-children",
                to_state="waiting",
                replayed=replayed,
            )
    return len(removed)


def flow_options(opts: Mapping[str, Any], default_prefix: str) -> dict[str, Any]:
    """Validate BullMQ's ``NodeOpts`` for ``getFlow`` (depth 10, maxChildren 20 by default)."""
    if not isinstance(opts, Mapping):
        raise InvalidArgument(f"getFlow options must be a dict, got {opts!r}")
    unknown = sorted(map(str, set(opts) - set(_FLOW_KEYS)))
    if unknown:
        raise InvalidArgument(
            f"unknown getFlow option(s) {unknown}; accepted: "
            "['depth', 'id', 'maxChildren', 'prefix', 'queueName']"
        )
    values: dict[str, Any] = {"depth": 10, "max_children": 20, "prefix": default_prefix}
    for key, value in opts.items():
        if value is not None:
            values[_FLOW_KEYS[key]] = value
    if "id" not in values or "queue_name" not in values:
        raise InvalidArgument("getFlow needs 'id' and 'queueName'")
    from .keys import QueueKeys, validate_job_id

    values["id"] = validate_job_id(values["id"])
    QueueKeys(values["queue_name"], values["prefix"])  # validates name and prefix
    whole_number("depth", values["depth"], 1)
    whole_number("maxChildren", values["max_children"], 1)
    return values
