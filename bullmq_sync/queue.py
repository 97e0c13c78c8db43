"""A BullMQ queue seen from synchronous Python: where its jobs live and how to reach Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from .connection import TOKENS, Connection
from .errors import ClientClosed, InvalidArgument
from .job import Job
from .keys import QueueKeys

ConnectionLike = Connection | str | redis.Redis | redis.ConnectionPool | None


class Queue:
    """A BullMQ queue: ``Queue("emails", connection="redis://localhost:6379")``.

    ``connection`` is a URL, a ``redis.Redis``, a pool or a shared ``Connection`` (many
    queues, one pool). BullMQ's option-dict form works too: ``Queue("q", {"prefix": "app",
    "connection": url})``. Use as a context manager, or call ``close()``; a connection that
    was passed in is left open.
    """

    def __init__(
        self,
        name: str,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str | None = None,
    ) -> None:
        options = dict(opts or {})
        unknown = set(options) - {"connection", "prefix"}
        if unknown:
            raise InvalidArgument(f"unsupported Queue option(s): {', '.join(sorted(unknown))}")
        if connection is None:
            connection = options.get("connection")
        if prefix is None:
            prefix = options.get("prefix", "bull")
        self.keys = QueueKeys(name, prefix=prefix)
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self._closed = False

    @property
    def name(self) -> str:
        return self.keys.name

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    @property
    def qualified_name(self) -> str:
        return self.keys.qualified_name

    def __repr__(self) -> str:
        return f"<Queue {self.qualified_name!r} on {self.connection!r}>"

    def next_token(self) -> str:
        """A fresh call token for a transition (see ``connection``)."""
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        return TOKENS.next()

    def get_job(self, job_id: str | int) -> Job | None:
        """The job with that id, or None."""
        return Job.from_id(self, job_id)

    getJob = get_job  # noqa: N815 - BullMQ's spelling

    def close(self) -> None:
        """Release this queue; closes the connection only if the queue created it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_connection:
            self.connection.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
