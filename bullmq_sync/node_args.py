"""Node BullMQ 6.7's options objects -> our keywords: the one rule every options dict follows.

Each entry of ``SHAPES`` declares, for one Node method (or constructor), every key of the
options object Node accepts and what it becomes here:

- a keyword of ours (``"removeChildren"`` -> ``remove_children``), type-checked before
  anything is sent;
- a no-op with the reason it has nothing to do here (``skipVersionCheck``: this client runs
  no version check), still type-checked;
- refused, with the reason (``telemetry`` objects are JavaScript tracers).

An unknown key raises ``InvalidArgument`` naming it and the accepted ones: a key is never
silently ignored. ``None`` (JavaScript's ``undefined``) means "not given". Our own keyword
spelling is accepted inside the dict too (``{"remove_children": False}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidArgument
from .options import flag, whole_number

Check = Callable[[str, Any], Any]


# -- value checks (each returns the value as our keyword takes it) -------------------------


def boolean(where: str, value: Any) -> bool:
    """A real bool (``1``/``"false"`` are refused: a misread flag can delete data)."""
    return flag(where, value)


def whole(low: int, high: int | None = None) -> Check:
    """An integer in ``[low, high]`` (a float with no fraction is accepted, as in JS)."""

    def check(where: str, value: Any) -> int:
        return whole_number(where, value, low, high)

    return check


def one_of(*allowed: str) -> Check:
    """One of the given strings."""

    def check(where: str, value: Any) -> str:
        if value not in allowed:
            raise InvalidArgument(f"{where} must be one of {', '.join(allowed)}; got {value!r}")
        return str(value)

    return check


def text(where: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{where} must be a non-empty string, got {value!r}")
    return value


def mapping(where: str, value: Any) -> Mapping[str, Any]:
    """A dict (validated further by the code it is handed to)."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where} must be a dict, got {type(value).__name__}")
    return value


def anything(where: str, value: Any) -> Any:
    """Passed through as is (validated by the code it is handed to)."""
    return value


# -- shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of a Node options object: our keyword (None = accepted, no effect here)."""

    keyword: str | None
    check: Check = anything
    note: str = ""
    """Why a no-op key has nothing to do here (shown in the docs)."""


@dataclass(frozen=True)
class Shape:
    """The options object of one Node method: ``Shape("Job.remove", {...})``."""

    method: str
    keys: Mapping[str, Key]
    refused: Mapping[str, str] = field(default_factory=dict)
    """Keys Node has that we refuse, each with the reason given in the error."""

    def accepted(self) -> list[str]:
        """Node's key names this shape accepts, in declaration order."""
        return list(self.keys)

    def parse(self, opts: Any) -> dict[str, Any]:
        """``opts`` (a dict or None) -> our keywords; ``InvalidArgument`` for anything else."""
        if opts is None:
            return {}
        if not isinstance(opts, Mapping):
            raise InvalidArgument(
                f"{self.method} takes an options dict with keys {self._names()}, "
                f"got {type(opts).__name__}"
            )
        by_keyword = {k.keyword: name for name, k in self.keys.items() if k.keyword}
        out: dict[str, Any] = {}
        for raw_key, value in opts.items():
            name = raw_key if raw_key in self.keys else by_keyword.get(raw_key)
            if name is None:
                if raw_key in self.refused:
                    raise InvalidArgument(
                        f"{self.method}: option {raw_key!r} is not supported: "
                        f"{self.refused[raw_key]}"
                    )
                raise InvalidArgument(
                    f"{self.method}: unknown option {raw_key!r}; accepted: {self._names()}"
                )
            key = self.keys[name]
            if value is None:
                if key.check is not boolean:
                    continue  # None is "not given", as undefined in Node
                value = False  # Node's null for a flag is falsy, never "use the default"
            checked = key.check(f"{self.method} option {name!r}", value)
            if key.keyword is not None:
                if key.keyword in out:
                    raise InvalidArgument(f"{self.method}: option {name!r} given twice")
                out[key.keyword] = checked
        return out

    def _names(self) -> str:
        return ", ".join(self.keys) or "(none)"


_NO_VERSION_CHECK = "this client runs no Redis version check"
_NO_READY_WAIT = "connections are pooled and opened on first use; there is nothing to wait for"
_NO_BLOCKING_FLAG = "a blocking connection is opened only by the objects that block"
_TELEMETRY = (
    "a Telemetry object holds JavaScript tracer/meter instances; per-job trace context is the "
    "job option 'telemetry'"
)
_REPEAT_SETTINGS = (
    "repeatStrategy / repeatKeyHashAlgorithm are JavaScript callbacks/legacy repeat settings; "
    "cron patterns are computed with croniter"
)

BASE_KEYS: dict[str, Key] = {
    "connection": Key("connection"),
    "prefix": Key("prefix", text),
    "skipVersionCheck": Key(None, boolean, _NO_VERSION_CHECK),
    "skipWaitingForReady": Key(None, boolean, _NO_READY_WAIT),
    "blockingConnection": Key(None, boolean, _NO_BLOCKING_FLAG),
}
"""QueueBaseOptions + KeyPrefixOptions, as every constructor takes them."""


def _events_max_len(where: str, value: Any) -> int:
    streams = mapping(where, value)
    if set(streams) != {"events"} or not isinstance(streams["events"], Mapping):
        raise InvalidArgument(f"{where} must be {{'events': {{'maxLen': n}}}}, got {value!r}")
    events = streams["events"]
    if set(events) != {"maxLen"}:
        raise InvalidArgument(f"{where}['events'] must be {{'maxLen': n}}, got {events!r}")
    return int(whole(0)(f"{where}['events']['maxLen']", events["maxLen"]))


SHAPES: dict[str, Shape] = {
    shape.method: shape
    for shape in (
        Shape(
            "Queue",
            {
                **BASE_KEYS,
                "defaultJobOptions": Key("default_job_options", mapping),
                "streams": Key("events_max_len", _events_max_len),
                "skipMetasUpdate": Key("skip_metas_update", boolean),
            },
            refused={"telemetry": _TELEMETRY, "settings": _REPEAT_SETTINGS},
        ),
        Shape(
            "QueueEvents",
            {
                **BASE_KEYS,
                "autorun": Key("autorun", boolean),
                "lastEventId": Key("last_event_id", text),
                "blockingTimeout": Key("block_ms", whole(1)),
            },
        ),
        Shape("FlowProducer", dict(BASE_KEYS), refused={"telemetry": _TELEMETRY}),
        Shape("FlowProducer.add", {"queuesOptions": Key("queues_options", mapping)}),
        Shape(
            "Queue.obliterate",
            {"force": Key("force", boolean), "count": Key("count", whole(1))},
        ),
        Shape(
            "Queue.retryJobs",
            {
                "count": Key("count", whole(1)),
                "state": Key("state", one_of("failed", "completed")),
                "timestamp": Key("timestamp", whole(0)),
            },
        ),
        Shape("Queue.promoteJobs", {"count": Key("count", whole(1))}),
        Shape("Queue.remove", {"removeChildren": Key("remove_children", boolean)}),
        Shape("Job.remove", {"removeChildren": Key("remove_children", boolean)}),
        Shape(
            "Job.changePriority",
            {"priority": Key("priority", whole(0)), "lifo": Key("lifo", boolean)},
        ),
        Shape(
            "Job.retry",
            {
                "resetAttemptsMade": Key("reset_attempts_made", boolean),
                "resetAttemptsStarted": Key("reset_attempts_started", boolean),
            },
        ),
        Shape("Job.moveToWaitingChildren", {"child": Key("child", mapping)}),
        Shape(
            "Job.getDependenciesCount",
            {
                "failed": Key("failed", boolean),
                "ignored": Key("ignored", boolean),
                "processed": Key("processed", boolean),
                "unprocessed": Key("unprocessed", boolean),
            },
        ),
    )
}
"""Every Node options object this package takes, by ``Class.method`` (or class for its
constructor)."""


def parse(method: str, opts: Any) -> dict[str, Any]:
    """``SHAPES[method].parse(opts)``."""
    return SHAPES[method].parse(opts)


def flag_or_options(method: str, value: Any, flag: str) -> dict[str, Any]:
    """A first argument that is either Node's options dict or our bool for ``flag``.

    ``job.remove(False)`` and ``job.remove({"removeChildren": False})`` both work; any other
    type (a truthy string, a number) is refused rather than read as a flag.
    """
    if isinstance(value, bool):
        return {flag: value}
    return parse(method, value)
