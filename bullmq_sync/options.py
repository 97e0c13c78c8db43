"""BullMQ's stored job options (the ``opts`` field) <-> Python. Pure, no I/O.

BullMQ stores a few options under short keys (``fpof`` for failParentOnFailure, ...); this
module is the only one that knows them.
"""

from __future__ import annotations

import json
import math as _math
import time as _time
from collections.abc import Mapping as _Mapping
from dataclasses import dataclass as _dataclass
from typing import Any

from .errors import InvalidArgument as _InvalidArgument
from .keys import validate_job_id as _validate_job_id


def flag(name: str, value: object) -> bool:
    """``value`` if it is a bool, else ``InvalidArgument`` (``"yes"``/``1`` are refused: a
    misread flag can delete or move data)."""
    if not isinstance(value, bool):
        raise _InvalidArgument(f"{name} must be True or False, got {value!r}")
    return value


SHORT_TO_LONG = {
    "de": "deduplication",
    "fpof": "failParentOnFailure",
    "cpof": "continueParentOnFailure",
    "idof": "ignoreDependencyOnFailure",
    "rdof": "removeDependencyOnFailure",
    "kl": "keepLogs",
}
LONG_TO_SHORT = {long: short for short, long in SHORT_TO_LONG.items()}
TELEMETRY_SHORT = {"tm": "metadata", "omc": "omitContext"}
"""The ``telemetry`` option is stored flattened: ``{metadata, omitContext}`` -> ``tm``/``omc``."""


_FLAT_OPTS: dict[str, dict[str, Any]] = {}
"""Decoded ``opts`` whose values are all scalars, by their stored text: a worker sees the same
few option sets again and again. Copies are handed out, so a caller may change its dict."""

_FLAT_OPTS_LIMIT = 256
_SCALARS = (str, int, float, bool, type(None))


def decode_stored_opts(raw: str | None) -> dict[str, Any]:
    """The ``opts`` hash field as a dict with BullMQ's public (long) option names."""
    if not raw:
        return {}
    known = _FLAT_OPTS.get(raw)
    if known is not None:
        return dict(known)
    decoded = _decode_opts(raw)
    if len(_FLAT_OPTS) < _FLAT_OPTS_LIMIT and all(
        isinstance(v, _SCALARS) for v in decoded.values()
    ):
        _FLAT_OPTS[raw] = dict(decoded)
    return decoded


def _decode_opts(raw: str) -> dict[str, Any]:
    try:
        stored = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(stored, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in stored.items():
        name = str(key)
        if name in TELEMETRY_SHORT:
            out.setdefault("telemetry", {})[TELEMETRY_SHORT[name]] = value
        else:
            out[SHORT_TO_LONG.get(name, name)] = value
    return out


def encode_stored_opts(opts: dict[str, Any]) -> dict[str, Any]:
    """Public option names -> the short keys BullMQ stores."""
    out: dict[str, Any] = {}
    for key, value in opts.items():
        if key == "telemetry" and isinstance(value, _Mapping):
            for short, long in TELEMETRY_SHORT.items():
                if value.get(long) is not None:
                    out[short] = value[long]
        else:
            out[LONG_TO_SHORT.get(key, key)] = value
    return out


# -- job options for adding jobs (producer side) ------------------------------------------
# Everything below turns the options a caller gives ``Queue.add`` (snake_case keywords, or
# BullMQ's camelCase opts dict, over the queue's default job options) into what BullMQ
# stores: the ``opts`` JSON (short keys), and the ``delay``/``priority``/``timestamp`` fields.

PRIORITY_LIMIT = 2**21 - 1
"""The highest priority BullMQ accepts (lower numbers run first, 0 = no priority)."""

BACKOFF_TYPES = frozenset({"fixed", "exponential"})
"""Backoff strategies every BullMQ worker knows; any other name is a custom type, run by the
worker's ``settings.backoffStrategy`` (as in BullMQ)."""

SNAKE_TO_OPTION = {
    "job_id": "jobId",
    "delay": "delay",
    "priority": "priority",
    "lifo": "lifo",
    "attempts": "attempts",
    "backoff": "backoff",
    "remove_on_complete": "removeOnComplete",
    "remove_on_fail": "removeOnFail",
    "timestamp": "timestamp",
    "parent": "parent",
    "keep_logs": "keepLogs",
    "stack_trace_limit": "stackTraceLimit",
    "size_limit": "sizeLimit",
    "fail_parent_on_failure": "failParentOnFailure",
    "continue_parent_on_failure": "continueParentOnFailure",
    "ignore_dependency_on_failure": "ignoreDependencyOnFailure",
    "remove_dependency_on_failure": "removeDependencyOnFailure",
    "deduplication": "deduplication",
    "telemetry": "telemetry",
}
"""Our keyword names -> BullMQ's public option names."""

SUPPORTED_OPTIONS = frozenset(SNAKE_TO_OPTION.values())
REFUSED_OPTIONS = {
    "repeat": "BullMQ 6 schedules repeats with job schedulers: use upsert_job_scheduler",
    "repeatJobKey": "set by job schedulers only (upsert_job_scheduler)",
    "prevMillis": "set by job schedulers only (upsert_job_scheduler)",
    "debounce": "removed in BullMQ 6: use deduplication",
}
"""JobsOptions keys of BullMQ 6.7 that ``add`` refuses, with the reason given in the error."""
_PARENT_POLICIES = (
    "failParentOnFailure",
    "continueParentOnFailure",
    "ignoreDependencyOnFailure",
    "removeDependencyOnFailure",
)
_POLICY_FLAG = {
    "failParentOnFailure": "fpof",
    "continueParentOnFailure": "cpof",
    "ignoreDependencyOnFailure": "idof",
    "removeDependencyOnFailure": "rdof",
}


@_dataclass(frozen=True)
class PreparedJob:
    """One job ready to be stored: validated, encoded, nothing left to decide."""

    name: str
    data: object
    data_json: str
    opts: dict[str, object]
    opts_json: str
    timestamp: int
    delay: int
    priority: int
    lifo: bool
    custom_id: str | None
    parent_key: str | None
    parent_json: str | None
    dedup_json: str | None = None
    """The ``deduplication`` option as JSON (what the add script reads), or None."""

    def script_fields(self) -> tuple[object, ...]:
        """The fields every add script takes for a job, in its argument order."""
        return (
            self.name,
            self.timestamp,
            self.data_json,
            self.opts_json,
            self.delay,
            self.priority,
            "1" if self.lifo else "0",
            self.parent_key or "",
            self.parent_json or "",
        )

    @property
    def deduplication_id(self) -> str | None:
        """The ``deduplication`` option's id, or None."""
        spec = self.opts.get("deduplication")
        return str(spec["id"]) if isinstance(spec, dict) else None

    @property
    def landing_state(self) -> str:
        """Where the job is stored: ``delayed``, ``prioritized`` or ``waiting``."""
        if self.delay > 0:
            return "delayed"
        return "prioritized" if self.priority > 0 else "waiting"


def normalize_job_options(opts: _Mapping[str, object] | None) -> dict[str, object]:
    """An opts mapping in either spelling -> BullMQ's public (camelCase) names, None dropped."""
    out: dict[str, object] = {}
    for key, value in (opts or {}).items():
        if not isinstance(key, str):
            raise _InvalidArgument(f"job option names must be strings, got {key!r}")
        name = SNAKE_TO_OPTION.get(key, SHORT_TO_LONG.get(key, key))
        if name in REFUSED_OPTIONS:
            raise _InvalidArgument(f"job option {key!r} is not supported: {REFUSED_OPTIONS[name]}")
        if name not in SUPPORTED_OPTIONS:
            raise _InvalidArgument(
                f"unknown job option {key!r}; accepted: {', '.join(sorted(SUPPORTED_OPTIONS))}"
            )
        if value is not None:
            out[name] = value
    return out


def whole_number(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (a float without fraction is accepted, as in JS)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _InvalidArgument(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and (not _math.isfinite(value) or value != int(value)):
        raise _InvalidArgument(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _InvalidArgument(f"{name} must be {bound}, got {value!r}")
    return number


def _backoff(value: object) -> dict[str, object]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"type": "fixed", "delay": whole_number("backoff", value, 0)}
    if not isinstance(value, _Mapping):
        raise _InvalidArgument(f"backoff must be a number of ms or a dict, got {value!r}")
    unknown = set(value) - {"type", "delay", "jitter"}
    if unknown:
        raise _InvalidArgument(f"unknown backoff field(s): {', '.join(sorted(map(str, unknown)))}")
    kind = value.get("type")
    if not isinstance(kind, str) or not kind:
        raise _InvalidArgument(
            f"backoff type must be 'fixed', 'exponential' or the name of a custom strategy "
            f"(run by the worker's settings.backoffStrategy), got {kind!r}"
        )
    out: dict[str, object] = {"type": kind}
    if value.get("delay") is not None:
        out["delay"] = whole_number("backoff delay", value["delay"], 0)
    jitter = value.get("jitter")
    if jitter is not None:
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
            raise _InvalidArgument(f"backoff jitter must be between 0 and 1, got {jitter!r}")
        out["jitter"] = jitter
    return out


def _telemetry(value: object) -> dict[str, object]:
    if not isinstance(value, _Mapping):
        raise _InvalidArgument(f"telemetry must be {{'metadata', 'omitContext'}}, got {value!r}")
    unknown = set(value) - {"metadata", "omitContext", "omit_context"}
    if unknown:
        raise _InvalidArgument(
            f"unknown telemetry field(s) {sorted(map(str, unknown))}; accepted: metadata, "
            "omitContext"
        )
    if "omitContext" in value and "omit_context" in value:
        raise _InvalidArgument("telemetry omitContext given twice (omitContext, omit_context)")
    out: dict[str, object] = {}
    metadata = value.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, str):
            raise _InvalidArgument(f"telemetry metadata must be a string, got {metadata!r}")
        out["metadata"] = metadata
    omit = value.get("omitContext", value.get("omit_context"))
    if omit is not None:
        if not isinstance(omit, bool):
            raise _InvalidArgument(f"telemetry omitContext must be a bool, got {omit!r}")
        out["omitContext"] = omit
    return out


def _keep_policy(name: str, value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return whole_number(name, value, 0)
    if isinstance(value, _Mapping):
        unknown = set(value) - {"count", "age", "limit"}
        if unknown or not value:
            raise _InvalidArgument(f"{name} accepts count, age and limit, got {dict(value)!r}")
        return {
            str(k): whole_number(f"{name}.{k}", v, -1 if k == "count" else 0)
            for k, v in value.items()
        }
    raise _InvalidArgument(f"{name} must be a bool, a count or a dict, got {value!r}")


def validate_custom_job_id(job_id: object) -> str:
    """A custom job id as BullMQ's Queue.add accepts it, else ``InvalidArgument``."""
    text = _validate_job_id(job_id)
    if text == "0" or text.startswith("0:"):
        raise _InvalidArgument("job id cannot be '0' or start with '0:'")
    if _is_js_integer_text(text):
        raise _InvalidArgument(f"custom job id cannot be an integer ({text!r}), as in BullMQ")
    if ":" in text and len(text.split(":")) != 3:
        raise _InvalidArgument(f"custom job id cannot contain ':' ({text!r}), as in BullMQ")
    return text


def _is_js_integer_text(text: str) -> bool:
    """True when JavaScript's ``String(parseInt(text, 10)) === text`` (Node's integer test)."""
    digits = text.removeprefix("-")
    if not digits.isdigit() or not digits.isascii():
        return False
    return text == str(int(text)) and abs(int(text)) < 10**21


def _parent(value: object) -> tuple[dict[str, object], str]:
    if not isinstance(value, _Mapping) or "id" not in value or "queue" not in value:
        raise _InvalidArgument(f"parent must be {{'id', 'queue'}}: {value!r}")
    parent_id, queue = value["id"], value["queue"]
    if not (isinstance(parent_id, str) and parent_id and isinstance(queue, str) and ":" in queue):
        raise _InvalidArgument(f"parent needs an id and a '<prefix>:<queue>': {value!r}")
    return {"id": parent_id, "queue": queue}, f"{queue}:{parent_id}"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def prepare_job(
    name: str,
    data: object,
    options: _Mapping[str, object],
    defaults: _Mapping[str, object] | None = None,
    *,
    now_ms: int | None = None,
) -> PreparedJob:
    """Validate and encode one job (``options`` over ``defaults``, both public names)."""
    if not isinstance(name, str):
        raise _InvalidArgument(f"job name must be a string, got {type(name).__name__}")
    given = normalize_job_options(defaults)
    given.update(normalize_job_options(options))
    merged: dict[str, object] = {"attempts": 0}
    merged.update(given)
    merged.pop("jobId", None)
    custom = options.get("jobId", options.get("job_id"))
    custom_id = validate_custom_job_id(custom) if custom is not None else None

    try:
        data_json = _dumps({} if data is None else data)
    except (TypeError, ValueError) as exc:
        raise _InvalidArgument(f"job data must be JSON-serialisable: {exc}") from None

    least = 1 if "attempts" in given else 0
    merged["attempts"] = whole_number("attempts", merged["attempts"], least)
    delay = whole_number("delay", merged.get("delay", 0), 0)
    priority = whole_number("priority", merged.get("priority", 0), 0, PRIORITY_LIMIT)
    lifo = merged.get("lifo", False)
    if not isinstance(lifo, bool):
        raise _InvalidArgument(f"lifo must be a bool, got {lifo!r}")
    if "backoff" in merged:
        merged["backoff"] = _backoff(merged["backoff"])
    if "telemetry" in merged:
        merged["telemetry"] = _telemetry(merged["telemetry"])
    for keep in ("removeOnComplete", "removeOnFail"):
        if keep in merged:
            merged[keep] = _keep_policy(keep, merged[keep])
    for number in ("keepLogs", "stackTraceLimit", "sizeLimit"):
        if number in merged:
            merged[number] = whole_number(number, merged[number], 0)
    timestamp_given = merged.get("timestamp")
    timestamp = (
        whole_number("timestamp", timestamp_given, 0)
        if timestamp_given is not None
        else (now_ms if now_ms is not None else int(_time.time() * 1000))
    )
    size_limit = merged.get("sizeLimit")
    if isinstance(size_limit, int) and size_limit and len(data_json.encode("utf-8")) > size_limit:
        raise _InvalidArgument(f"the size of job {name} exceeds the limit {size_limit} bytes")

    for policy in _PARENT_POLICIES:
        if merged.get(policy) is not None:
            flag(policy, merged[policy])
    policies = [p for p in _PARENT_POLICIES if merged.get(p)]
    if len(policies) > 1:
        raise _InvalidArgument(f"these options cannot be used together: {', '.join(policies)}")
    parent_key = parent_json = None
    if "parent" in merged:
        parent_opt, parent_key = _parent(merged["parent"])
        merged["parent"] = parent_opt
        stored_parent: dict[str, object] = {"id": parent_opt["id"], "queueKey": parent_opt["queue"]}
        for policy in policies:
            stored_parent[_POLICY_FLAG[policy]] = True
        parent_json = _dumps(stored_parent)
    dedup_json = None
    if "deduplication" in merged:
        if parent_key is not None:
            raise _InvalidArgument("deduplication and parent options cannot be used together")
        merged["deduplication"] = deduplication_spec(merged["deduplication"])
        dedup_json = _dumps(merged["deduplication"])
    if custom_id is not None:
        merged["jobId"] = custom_id
    stored = encode_stored_opts(merged)
    try:
        opts_json = _dumps(stored)
    except (TypeError, ValueError) as exc:
        raise _InvalidArgument(f"job options must be JSON-serialisable: {exc}") from None
    return PreparedJob(
        name=name,
        data=({} if data is None else data),
        data_json=data_json,
        opts=merged,
        opts_json=opts_json,
        timestamp=timestamp,
        delay=delay,
        priority=priority,
        lifo=lifo,
        custom_id=custom_id,
        parent_key=parent_key,
        parent_json=parent_json,
        dedup_json=dedup_json,
    )


# -- deduplication (BullMQ's ``deduplication`` option, stored as ``de``) -------------------

DEDUP_FIELDS = {
    "id": "id",
    "ttl": "ttl",
    "extend": "extend",
    "replace": "replace",
    "reschedule": "reschedule",
    "keepLastIfActive": "keepLastIfActive",
    "keep_last_if_active": "keepLastIfActive",
}
"""Accepted keys of a ``deduplication`` dict (either spelling) -> BullMQ's stored names."""


def deduplication_spec(value: object) -> dict[str, object]:
    """Validate a ``deduplication`` option; BullMQ's camelCase dict as it will be stored."""
    if not isinstance(value, _Mapping):
        raise _InvalidArgument(
            f"deduplication must be a dict like {{'id': 'x', 'ttl': 5000}}, got {value!r}"
        )
    spec: dict[str, object] = {}
    for key, item in value.items():
        name = DEDUP_FIELDS.get(key) if isinstance(key, str) else None
        if name is None:
            raise _InvalidArgument(
                f"unknown deduplication field {key!r} (id, ttl, extend, replace, reschedule,"
                " keepLastIfActive)"
            )
        if name in spec:
            raise _InvalidArgument(f"deduplication field {name!r} given twice")
        if item is None:
            continue
        if name == "id":
            if not isinstance(item, str) or not item:
                raise _InvalidArgument(f"deduplication id must be a non-empty string, got {item!r}")
            spec[name] = item
        elif name == "ttl":
            spec[name] = whole_number("deduplication ttl", item, 1)
        else:
            if not isinstance(item, bool):
                raise _InvalidArgument(f"deduplication {name} must be a bool, got {item!r}")
            spec[name] = item
    if "id" not in spec:
        raise _InvalidArgument("deduplication id must be provided")
    return spec


def keep_policy(value: Any) -> tuple[str, str, str]:
    """A removeOnComplete / removeOnFail value as (count, age, limit) script arguments.

    True -> delete at once (count 0); False / None -> keep all; n -> keep the newest n;
    ``{"count": n, "age": seconds, "limit": m}`` as BullMQ's KeepJobs.
    """
    if value is None or value is False:
        return ("", "", "")
    if value is True:
        return ("0", "", "")
    # Checked as a job's own keep option is: a fraction, a bool count or a negative age
    # would otherwise delete finished jobs.
    value = _keep_policy("removeOnComplete/removeOnFail", value)
    if isinstance(value, (int, float)):
        return (str(int(value)), "", "")
    if isinstance(value, _Mapping):
        count, age, limit = value.get("count"), value.get("age"), value.get("limit")
        return (
            "" if count is None else str(int(count)),
            "" if age is None else str(age),
            "" if limit is None else str(int(limit)),
        )
    raise _InvalidArgument(f"a keep policy must be a bool, a number or a dict, got {value!r}")
