"""Flows: a parent job and its children (nested, across queues) added in one atomic call.

``FlowProducer.add`` takes BullMQ's flow dict::

    {"name": "report", "queueName": "reports", "data": {...}, "opts": {...},
     "children": [{"name": "page", "queueName": "pages", "data": {...}}, ...]}

A node with children waits in its queue's ``waiting-children`` set until every child has
finished; the children are added as ordinary jobs (wait / prioritized / delayed) that point at
their parent. The whole tree is one Lua call (``lua/addFlow.lua``): either every job is stored
or none is. As in BullMQ 6.7, parents are released only after the whole tree is in.

Redis Cluster: a flow's keys must all hash to one slot, so every queue of a flow needs the same
hash tag, normally in the prefix: ``FlowProducer(prefix="{app}")``.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import flow_introspection, log, node_args
from .connection import OUTCOME_TTL_MS, Connection
from .errors import ClientClosed, ConfigurationError, InvalidArgument, job_error
from .job import Job
from .options import PreparedJob, normalize_job_options, prepare_job
from .queue import ConnectionLike, Queue

ADD_COMMAND = "addJob"
_NODE_FIELDS = frozenset({"name", "queueName", "queue_name", "data", "opts", "children", "prefix"})
_DEDUP_OPTIONS = frozenset({"deduplication", "debounce", "de"})


@dataclass(eq=False)
class JobNode:
    """One job of an added flow and the nodes of its children (BullMQ's ``JobNode``)."""

    job: Job
    children: list[JobNode] = field(default_factory=list)

    def walk(self) -> Iterable[JobNode]:
        """This node, then every descendant (depth first)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(eq=False)
class _Node:
    queue: Queue
    prepared: PreparedJob
    job_id: str
    children: list[_Node]
    has_children: bool

    @property
    def key(self) -> str:
        return self.queue.keys.job(self.job_id)


class FlowProducer:
    """Adds flows: ``FlowProducer(connection="redis://localhost:6379").add({...})``.

    ``opts`` accepts BullMQ's ``{"connection": ..., "prefix": ...}`` form. ``prefix`` (default
    ``"bull"``) applies to every node without its own ``"prefix"``. Use as a context manager or
    call ``close()``; a ``Connection`` passed in is left open.
    """

    def __init__(
        self,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str | None = None,
    ) -> None:
        options = node_args.parse("FlowProducer", opts)
        if connection is None:
            connection = options.get("connection")
        if prefix is None:
            prefix = options.get("prefix", "bull")
        if not isinstance(prefix, str) or not prefix:
            raise InvalidArgument(f"prefix must be a non-empty string, got {prefix!r}")
        self.prefix: str = prefix
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self._queues: dict[tuple[str, str], Queue] = {}
        self._closed = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<FlowProducer prefix={self.prefix!r} on {self.connection!r}{state}>"

    def close(self) -> None:
        """Release this producer; closes the connection only if it created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for queue in self._queues.values():
            queue.close()
        self._queues.clear()
        if self._owns_connection:
            self.connection.close()

    def __enter__(self) -> FlowProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adding flows ---------------------------------------------------------------------

    def add(self, flow: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> JobNode:
        """Add one flow atomically; its tree of stored jobs.

        ``opts`` is BullMQ's ``{"queuesOptions": {"<queue>": {"defaultJobOptions": {...}}}}``.
        Raises ``InvalidArgument`` (nothing sent) for a bad tree, ``ParentJobNotFound`` (-5)
        or ``ParentJobCannotBeReplaced`` (-7) for a root attached with ``opts.parent`` to a
        job outside the flow (nothing written).
        """
        return self._add([flow], _queues_options(opts))[0]

    def add_bulk(self, flows: Iterable[Mapping[str, Any]]) -> list[JobNode]:
        """Add several flows in one atomic call; their trees, in order."""
        flows = list(flows)
        if not flows:
            return []
        return self._add(flows, {})

    addBulk = add_bulk

    def _add(
        self, flows: list[Mapping[str, Any]], queues_options: Mapping[str, Any]
    ) -> list[JobNode]:
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        now = int(time.time() * 1000)
        roots = [self._build(flow, None, queues_options, now, "flow") for flow in flows]
        ordered = _parents_first(roots)
        _refuse_repeated_ids(ordered)
        queues = list({id(node.queue): node.queue for node in ordered}.values())
        self._check_one_slot(queues)

        first = roots[0].queue
        args: list[Any] = [OUTCOME_TTL_MS, now]
        for node in ordered:
            args.extend(_args(node))
        started = time.perf_counter()
        reply = self.connection.run_script(
            "addFlow",
            [first.keys.op(first.next_token())] + [queue.keys.meta for queue in queues],
            args,
        )
        status = int(reply[0])
        if status < 0:
            refused = ordered[int(reply[1]) - 1]
            error = job_error(
                status,
                queue=refused.queue.name,
                job_id=refused.job_id,
                command=ADD_COMMAND,
                parent_key=refused.prepared.parent_key,
            )
            log.refused(
                "flow.add_refused",
                queue=refused.queue.name,
                job_id=refused.job_id,
                code=status,
                error=str(error),
            )
            raise error

        duplicates = {int(i) - 1 for i in reply[2]}
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        for index, node in enumerate(ordered):
            duplicated = index in duplicates
            log.transition(
                "job.duplicated" if duplicated else "job.added",
                queue=node.queue.name,
                job_id=node.job_id,
                from_state=None,
                to_state=None if duplicated else _landing(node),
                flow=True,
            )
        for root in roots:
            log.event(
                "flow.added",
                root=root.key,
                jobs=_count(root),
                replayed=status == 1,
                bulk=len(roots) if len(roots) > 1 else None,
                elapsed_ms=elapsed,
            )
        return [_job_node(root) for root in roots]

    # -- validation and encoding (pure, before anything is sent) --------------------------

    def _build(
        self,
        node: Mapping[str, Any],
        parent: dict[str, str] | None,
        queues_options: Mapping[str, Any],
        now: int,
        where: str,
    ) -> _Node:
        if not isinstance(node, Mapping):
            raise InvalidArgument(f"{where}: a flow node is a dict, got {type(node).__name__}")
        unknown = set(node) - _NODE_FIELDS
        if unknown:
            fields = sorted(map(str, unknown))
            raise InvalidArgument(f"{where}: unknown flow node field(s) {fields}")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{where}: a flow node needs a 'name' (non-empty string)")
        queue_name = node.get("queueName", node.get("queue_name"))
        if not isinstance(queue_name, str) or not queue_name:
            raise InvalidArgument(f"{where}: a flow node needs a 'queueName' (non-empty string)")
        prefix = node.get("prefix") or self.prefix
        if not isinstance(prefix, str):
            raise InvalidArgument(f"{where}: prefix must be a string, got {prefix!r}")
        queue = self._queue(queue_name, prefix)

        opts = node.get("opts")
        if opts is not None and not isinstance(opts, Mapping):
            raise InvalidArgument(f"{where}: opts must be a dict, got {type(opts).__name__}")
        options: dict[str, Any] = dict(opts or {})
        dedup = _DEDUP_OPTIONS & set(options)
        if dedup:
            raise InvalidArgument(
                f"{where}: deduplication options cannot be used on flow nodes ({sorted(dedup)})"
            )
        if parent is not None:
            options["parent"] = parent
        elif isinstance(options.get("parent"), Job):
            outside: Job = options["parent"]
            options["parent"] = {"id": outside.id, "queue": outside.queue.qualified_name}
        defaults = _queue_defaults(queues_options, queue_name)
        try:
            prepared = prepare_job(name, node.get("data"), options, defaults, now_ms=now)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where} ({queue_name}/{name}): {exc}") from None

        children = node.get("children") or []
        if not isinstance(children, (list, tuple)):
            raise InvalidArgument(f"{where}: children must be a list of flow nodes")
        job_id = prepared.custom_id or str(uuid.uuid4())
        link = {"id": job_id, "queue": queue.qualified_name}
        built = [
            self._build(child, link, queues_options, now, f"{where}.children[{index}]")
            for index, child in enumerate(children)
        ]
        return _Node(queue, prepared, job_id, built, bool(built))

    def _queue(self, name: str, prefix: str) -> Queue:
        queue = self._queues.get((prefix, name))
        if queue is None:
            queue = Queue(name, prefix=prefix, connection=self.connection)
            self._queues[(prefix, name)] = queue
        return queue

    def _check_one_slot(self, queues: list[Queue]) -> None:
        from .cluster import ClusterConnection

        if not isinstance(self.connection, ClusterConnection) or len(queues) < 2:
            return
        tags = {queue.keys.hash_slot_tag() for queue in queues}
        if len(tags) > 1:
            raise ConfigurationError(
                "a flow across queues needs one hash slot on Redis Cluster: give every queue "
                "the same hash tag, e.g. FlowProducer(prefix='{app}'); got tags "
                f"{sorted(tags)}"
            )

    # -- flow introspection (flow_introspection.py) --------------------------------------

    def get_flow(self, opts: Mapping[str, Any] | None = None, **kwargs: Any) -> JobNode | None:
        """The stored tree under a job (BullMQ's ``getFlow``); None if the job is missing.

        ``opts`` is BullMQ's ``{"id", "queueName", "prefix", "depth", "maxChildren"}`` (also
        as keywords ``id``, ``queue_name``, ``prefix``, ``depth``, ``max_children``); depth
        10 and up to 20 children of each kind per parent by default. A child whose job no
        longer exists is left out (Node puts ``undefined`` in its place).
        """
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        if opts is not None and not isinstance(opts, Mapping):
            raise InvalidArgument(f"getFlow options must be a dict, got {opts!r}")
        merged = {**(opts or {}), **kwargs}
        values = flow_introspection.flow_options(merged, self.prefix)
        return self._node(
            values["prefix"], values["queue_name"], values["id"],
            values["depth"], values["max_children"],
        )

    def _node(
        self, prefix: str, queue_name: str, job_id: str, depth: int, most: int
    ) -> JobNode | None:
        """One job of ``get_flow``'s tree and its children, ``depth`` levels deep."""
        queue = self._queue(queue_name, prefix)
        job = Job.from_id(queue, job_id)
        if job is None:
            return None
        page = (0, most)
        deps = flow_introspection.get_dependencies(
            queue, job.id, dict.fromkeys(flow_introspection.DEPENDENCY_TYPES, page)
        )
        child_keys = [
            *deps["processed"], *deps["unprocessed"], *deps["failed"], *deps["ignored"]
        ]
        node = JobNode(job)
        if child_keys and depth - 1 > 0:
            for key in child_keys:
                child_prefix, child_queue, child_id = flow_introspection.parse_node_key(key)
                child = self._node(child_prefix, child_queue, child_id, depth - 1, most)
                if child is not None:
                    node.children.append(child)
        return node

    getFlow = get_flow

    # -- end of flow introspection --------------------------------------------------------


def _queues_options(opts: Mapping[str, Any] | None) -> Mapping[str, Any]:
    queues: Mapping[str, Any] = node_args.parse("FlowProducer.add", opts).get(
        "queues_options", {}
    )
    for queue_name in queues:  # every entry is checked, used by the flow or not
        normalize_job_options(_queue_defaults(queues, queue_name))
    return queues


def _queue_defaults(queues_options: Mapping[str, Any], queue_name: str) -> Mapping[str, Any]:
    entry = queues_options.get(queue_name) or {}
    if not isinstance(entry, Mapping):
        raise InvalidArgument(f"queuesOptions[{queue_name!r}] must be a dict")
    unknown = set(entry) - {"defaultJobOptions", "default_job_options"}
    if unknown:
        raise InvalidArgument(
            f"queuesOptions[{queue_name!r}]: unsupported key(s) {sorted(map(str, unknown))}; "
            "only defaultJobOptions applies to the jobs of a flow"
        )
    defaults = entry.get("defaultJobOptions", entry.get("default_job_options")) or {}
    if not isinstance(defaults, Mapping):
        raise InvalidArgument(f"queuesOptions[{queue_name!r}].defaultJobOptions must be a dict")
    return defaults


def _parents_first(roots: list[_Node]) -> list[_Node]:
    """Level by level over all roots: the order in which BullMQ 6.7's FlowProducer sends them."""
    ordered: list[_Node] = []
    pending = deque(roots)
    while pending:
        node = pending.popleft()
        ordered.append(node)
        pending.extend(node.children)
    return ordered


def _refuse_repeated_ids(nodes: list[_Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.key in seen:
            raise InvalidArgument(f"job {node.key!r} appears more than once in the flow")
        seen.add(node.key)


def _args(node: _Node) -> tuple[Any, ...]:
    return (
        node.queue.keys.base,
        node.job_id,
        *node.prepared.script_fields(),
        "1" if node.has_children else "0",
    )


def _landing(node: _Node) -> str:
    return "waiting-children" if node.has_children else node.prepared.landing_state


def _count(node: _Node) -> int:
    return 1 + sum(_count(child) for child in node.children)


def _job_node(node: _Node) -> JobNode:
    job = Job.from_prepared(node.queue, node.job_id, node.prepared)
    return JobNode(job, [_job_node(child) for child in node.children])
