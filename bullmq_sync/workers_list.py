"""Which workers serve a queue, read from Redis' ``CLIENT LIST`` as BullMQ reads it.

BullMQ names each worker's blocking connection (``CLIENT SETNAME``)
``<prefix>:<base64(queue name)>``, or ``<prefix>:<base64(queue name)>:w:<worker name>`` for a
named worker, and a ``QueueEvents`` connection ``<prefix>:<base64(queue name)>:qe``. A
queue's other connections stay unnamed. Our Worker names its one blocking socket the same
way, so Node's ``queue.getWorkers()`` and dashboards list Python workers, and
``get_workers()`` here lists Node's.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import log
from .errors import BullMQSyncError

if TYPE_CHECKING:
    from .connection import Connection
    from .context import QueueContext
    from .keys import QueueKeys

QUEUE_EVENTS_SUFFIX = ":qe"
WORKER_NAME_SEPARATOR = ":w:"
NO_CLIENT_LIST = "GCP does not support client list"
"""BullMQ's single placeholder entry when the server refuses ``CLIENT`` commands."""
_CLIENT_REFUSED = re.compile(r"unknown command ['`]\s*client\s*['`]", re.IGNORECASE)
"""Redis' refusal of ``CLIENT`` (renamed or disabled), whichever case the command was sent in."""


def client_name(keys: QueueKeys, suffix: str = "") -> str:
    """``<prefix>:<base64(queue name)><suffix>``, BullMQ's connection name for a queue."""
    encoded = base64.b64encode(keys.name.encode("utf-8")).decode("ascii")
    return f"{keys.prefix}:{encoded}{suffix}"


def worker_client_name(keys: QueueKeys, worker_name: str | None = None) -> str | None:
    """The name of a worker's blocking connection (``:w:<name>`` for a named worker); None
    when Redis would refuse it (spaces or other characters outside ``!``..``~`` in the
    prefix or the worker's name): the connection then stays unnamed rather than failing."""
    return _settable(
        client_name(keys, f"{WORKER_NAME_SEPARATOR}{worker_name}" if worker_name else "")
    )


def queue_events_client_name(keys: QueueKeys) -> str | None:
    """The name of a QueueEvents connection (``:qe``), None when Redis would refuse it."""
    return _settable(client_name(keys, QUEUE_EVENTS_SUFFIX))


def _settable(name: str) -> str | None:
    if all("!" <= char <= "~" for char in name):
        return name
    log.event("connection.unnamed", level=logging.WARNING, client_name=name)
    return None


def parse_client_list(
    text: str, queue_name: str, matches: Callable[[str], bool]
) -> list[dict[str, str]]:
    """Entries of one ``CLIENT LIST`` reply whose name ``matches``; each a dict of its
    ``key=value`` fields, ``name`` the queue's name and ``rawname`` the connection's."""
    workers: list[dict[str, str]] = []
    for fields in _entries(text):
        name = fields.get("name")
        if name and matches(name):
            fields["name"] = queue_name
            fields["rawname"] = name
            workers.append(fields)
    return workers


def is_worker_of(keys: QueueKeys) -> Callable[[str], bool]:
    """Whether a connection name is one of the queue's workers (named or not)."""
    base = client_name(keys)
    named = base + WORKER_NAME_SEPARATOR
    return lambda name: name == base or name.startswith(named)


def _entries(text: str) -> list[dict[str, str]]:
    """The ``key=value`` fields of each line of a ``CLIENT LIST`` reply."""
    return [
        dict(pair.partition("=")[::2] for pair in line.split(" ")) for line in text.splitlines()
    ]


def get_workers(queue: QueueContext) -> list[dict[str, str]]:
    """BullMQ's ``getWorkers``: one dict per worker connection (on a cluster: the node with
    the most)."""
    return _clients(queue, is_worker_of(queue.keys))


def count_workers(connection: Connection, queues: list[QueueKeys]) -> dict[str, int]:
    """Workers per queue from one ``CLIENT LIST`` per node (a dashboard's overview), counted
    as ``get_workers`` counts them."""
    names = [
        [fields.get("name", "") for fields in _entries(reply)]
        for reply in connection.client_lists()
    ]
    counts: dict[str, int] = {}
    for keys in queues:
        matches = is_worker_of(keys)
        counts[keys.name] = max(
            (sum(1 for name in node if name and matches(name)) for node in names), default=0
        )
    return counts


def get_queue_events(queue: QueueContext) -> list[dict[str, str]]:
    """BullMQ's (deprecated) ``getQueueEvents``: the QueueEvents connections of the queue."""
    name = client_name(queue.keys, QUEUE_EVENTS_SUFFIX)
    return _clients(queue, lambda raw: raw == name)


def _clients(queue: QueueContext, matches: Callable[[str], bool]) -> list[dict[str, str]]:
    try:
        replies = queue.connection.client_lists()
    except BullMQSyncError as exc:
        if _CLIENT_REFUSED.search(str(exc)):
            return [{"name": NO_CLIENT_LIST}]
        raise
    best: list[dict[str, str]] = []
    for reply in replies:
        found = parse_client_list(reply, queue.name, matches)
        if len(found) >= len(best):  # ties go to the later node, as in BullMQ
            best = found
    return best
