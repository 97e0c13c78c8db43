"""What operations need of a queue and a job, as structural types.

Operations (producer, getters, management, job_ops, worker_steps, schedulers, manual) take a
``QueueContext`` and ids, and return plain data; ``Queue`` and ``Job`` satisfy these protocols
without importing or being imported by the operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .connection import Connection
    from .keys import QueueKeys


class QueueContext(Protocol):
    """A queue as an operation sees it: name, key names, connection, call tokens (a Queue)."""

    @property
    def name(self) -> str: ...

    @property
    def keys(self) -> QueueKeys: ...

    @property
    def connection(self) -> Connection: ...

    def next_token(self) -> str:
        """A fresh call token for a transition's outcome key (refused once the queue closed)."""
        ...


@runtime_checkable
class JobRef(Protocol):
    """Anything naming one stored job: its id and its queue's qualified name (a Job)."""

    @property
    def id(self) -> str: ...

    @property
    def queue_qualified_name(self) -> str: ...


class StoredJob(NamedTuple):
    """A job hash as read from Redis: the id and the hash fields (strings); ``Job.from_hash``
    turns it into a Job."""

    id: str
    fields: dict[str, str]


def pairs(flat: object) -> dict[str, str]:
    """A hash reply (a dict, or RESP2's flat ``[field, value, ...]``) as a dict."""
    if isinstance(flat, dict):
        return flat
    assert isinstance(flat, (list, tuple))
    return dict(zip(flat[::2], flat[1::2], strict=False))
