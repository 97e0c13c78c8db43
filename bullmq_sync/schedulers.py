"""Job schedulers (BullMQ 6 repeatable jobs): the producer API and the worker's next iteration.

A scheduler is a ``repeat`` zset entry (score = the current iteration's ms) plus a
``repeat:<id>`` hash; each iteration is a normal job ``repeat:<id>:<ms>`` with ``rjk = id``.
Workers create the next iteration when they fetch the current one (``after_fetch``).
Cron patterns are computed here with ``croniter`` (BullMQ uses cron-parser); ``every``
slots are computed inside the scripts, as BullMQ does.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from . import log
from .connection import OUTCOME_TTL_MS
from .errors import InvalidArgument, job_error
from .options import encode_stored_opts, normalize_job_options, prepare_job, whole_number

if TYPE_CHECKING:
    from .context import QueueContext

UPSERT_COMMAND = "addJobScheduler"

# -- cron ----------------------------------------------------------------------------------


def _zone(tz: str | None) -> Any:
    if not tz:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(f"unknown time zone {tz!r}") from exc


def cron_next(
    pattern: str, after_ms: float, *, tz: str | None = None, end_date: float | None = None
) -> int | None:
    """The first ms strictly after ``after_ms`` matching ``pattern`` (None past ``end_date``).

    Like cron-parser: five fields, or six with seconds first; ``tz`` (IANA) or local time.
    """
    fields = pattern.split()
    zone = _zone(tz)
    # cron-parser drops the milliseconds of the start and looks from the next second on. It
    # walks wall-clock time in the zone, so croniter runs on naive local times here (croniter
    # on aware datetimes keeps the start's UTC offset across a DST switch).
    start = datetime.fromtimestamp(math.floor(after_ms / 1000), tz=zone).replace(tzinfo=None)
    try:
        it = croniter(pattern, start, second_at_beginning=len(fields) == 6)
        for _ in range(8):
            wall: datetime = it.get_next(datetime)
            found = wall.replace(tzinfo=zone)
            if found.timestamp() * 1000 > after_ms:
                break
    except (ValueError, KeyError) as exc:
        raise InvalidArgument(f"invalid cron pattern {pattern!r}: {exc}") from None
    millis = round(found.timestamp() * 1000)
    if end_date is not None and millis > end_date:
        return None
    return millis


def _check_pattern(pattern: str, tz: str | None) -> None:
    if not isinstance(pattern, str) or len(pattern.split()) not in (5, 6):
        raise InvalidArgument(f"a cron pattern has 5 or 6 fields, got {pattern!r}")
    cron_next(pattern, time.time() * 1000, tz=tz)


def _iteration_keys(queue: QueueContext) -> tuple[str, ...]:
    """The KEYS of the scripts that store a scheduler's next iteration."""
    keys = queue.keys
    return (
        keys.repeat,
        keys.delayed,
        keys.wait,
        keys.meta,
        keys.prioritized,
        keys.marker,
        keys.id,
        keys.events,
        keys.pc,
        keys.active,
        keys.op(queue.next_token()),
    )


def _legacy_shape(key: str) -> bool:
    """BullMQ's test for a v5 repeat key ``name:id:endDate:tz:<cron|every>``."""
    parts = key.split(":", 4)
    if len(parts) < 5 or not parts[4]:
        return False
    if parts[2] and not parts[2].isdigit():
        return False
    return " " in parts[4] or parts[4].isdigit()


def _ms(value: Any) -> int | None:
    """A date option (ms number, datetime or ISO text) as ms since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgument(f"a date must be ms, a datetime or ISO text, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(f"not a date: {value!r}") from None
        return _ms(moment)
    raise InvalidArgument(f"a date must be ms, a datetime or ISO text, got {value!r}")


# -- the worker side -------------------------------------------------------------------------


def _next_pattern_ms(repeat: Mapping[str, Any], now: int) -> int | None:
    start = _ms(repeat.get("startDate"))
    begin = max(start, now) if start is not None else now
    found = cron_next(
        str(repeat["pattern"]), begin, tz=repeat.get("tz"), end_date=_ms(repeat.get("endDate"))
    )
    if found is None:
        return None
    return max(found, now)


def _iteration_opts(
    stored: Mapping[str, Any],
    repeat: Mapping[str, Any],
    *,
    count: int,
    next_ms: int | None,
    offset: Any,
    now: int,
    scheduler_id: str,
) -> dict[str, Any]:
    """The next iteration's stored opts, built from the current one's like BullMQ does."""
    opts = dict(stored)
    opts.setdefault("attempts", 0)
    new_repeat = {k: v for k, v in repeat.items() if k != "immediately"}
    new_repeat["count"] = count
    for date in ("startDate", "endDate"):
        new_repeat.pop(date, None)
        if repeat.get(date):
            new_repeat[date] = _ms(repeat[date])
    new_repeat.pop("offset", None)
    if offset:
        new_repeat["offset"] = offset
    opts["repeat"] = new_repeat
    opts["timestamp"] = now
    opts["repeatJobKey"] = scheduler_id
    opts.pop("prevMillis", None)
    if next_ms is not None:
        opts["prevMillis"] = next_ms
        opts["jobId"] = f"repeat:{scheduler_id}:{next_ms}"
    return opts


def after_fetch(queue: QueueContext, job_id: str, fields: Mapping[str, str]) -> str | None:
    """Create the next iteration when the job just fetched (its id and hash ``fields``)
    belongs to a job scheduler; the new iteration's id, or None.

    Called by the worker right after fetching a job, like BullMQ's worker does. One script
    call with an outcome key, so a call retried after a lost reply creates nothing twice.
    """
    scheduler_id = fields.get("rjk")
    if not scheduler_id:
        return None
    stored = json.loads(fields.get("opts") or "{}")
    if not isinstance(stored, dict):
        stored = {}
    repeat = stored.get("repeat") if isinstance(stored.get("repeat"), dict) else {}
    assert isinstance(repeat, dict)
    count = int(repeat["count"]) + 1 if repeat.get("count") else 1
    limit = repeat.get("limit")
    if limit is not None and count > int(limit):
        return None
    now = int(time.time() * 1000)
    end = _ms(repeat.get("endDate"))
    if end and now > end:
        return None
    now = max(now, int(stored.get("prevMillis") or 0))
    next_ms: int | None = None
    if repeat.get("pattern") and not repeat.get("every"):
        next_ms = _next_pattern_ms(repeat, now)
        if next_ms is None:
            return None
    elif not repeat.get("every"):
        return None
    offset = repeat.get("offset") if repeat.get("every") else None
    opts = _iteration_opts(
        stored,
        repeat,
        count=count,
        next_ms=next_ms,
        offset=offset,
        now=now,
        scheduler_id=scheduler_id,
    )
    keys = queue.keys
    reply = queue.connection.run_script(
        "nextSchedulerIteration",
        _iteration_keys(queue),
        (
            keys.base,
            OUTCOME_TTL_MS,
            scheduler_id,
            job_id,
            "" if next_ms is None else next_ms,
            json.dumps(opts, separators=(",", ":")),
            now,
            "1" if _legacy_shape(scheduler_id) else "0",
        ),
    )
    created = str(reply) if reply else None
    if created:
        log.transition(
            "job.added",
            queue=queue.name,
            job_id=created,
            from_state=None,
            to_state=None,
            scheduler=scheduler_id,
        )
    return created


# -- the producer side -----------------------------------------------------------------------

REPEAT_KEYS = {
    "every": "every",
    "pattern": "pattern",
    "tz": "tz",
    "limit": "limit",
    "startDate": "startDate",
    "start_date": "startDate",
    "endDate": "endDate",
    "end_date": "endDate",
    "offset": "offset",
    "immediately": "immediately",
    "count": "count",
}
"""Accepted ``repeat`` keys (either spelling) -> BullMQ's names."""

REFUSED_REPEAT_KEYS = {
    "key": "a BullMQ 5 repeatable-job key; a job scheduler is named by its id",
    "jobId": "BullMQ 5 repeatable jobs; a scheduler's iterations are named repeat:<id>:<ms>",
    "prevMillis": "set by the scheduler from the previous iteration",
}
"""RepeatOptions keys of BullMQ 6.7 that ``upsert_job_scheduler`` refuses, with the reason."""


def _repeat_spec(repeat: Mapping[str, Any], now: int) -> dict[str, Any]:
    if not isinstance(repeat, Mapping):
        raise InvalidArgument(f"repeat must be a dict, got {type(repeat).__name__}")
    for key in repeat:
        if key in REFUSED_REPEAT_KEYS:
            raise InvalidArgument(
                f"repeat option {key!r} is not supported: {REFUSED_REPEAT_KEYS[key]}"
            )
        if key not in REPEAT_KEYS:
            accepted = ", ".join(k for k in REPEAT_KEYS if "_" not in k)
            raise InvalidArgument(f"unknown repeat option {key!r}; accepted: {accepted}")
    spec = {REPEAT_KEYS[k]: v for k, v in repeat.items() if v is not None}
    if "pattern" in spec and "every" in spec:
        raise InvalidArgument(
            "Both .pattern and .every options are defined for this repeatable job"
        )
    if "pattern" not in spec and "every" not in spec:
        raise InvalidArgument(
            "Either .pattern or .every options must be defined for this repeatable job"
        )
    if spec.get("immediately") and "startDate" in spec:
        raise InvalidArgument(
            "Both .immediately and .startDate options are defined for this repeatable job"
        )
    if "immediately" in spec and not isinstance(spec["immediately"], bool):
        raise InvalidArgument("repeat immediately must be a bool")
    if "every" in spec:
        spec["every"] = whole_number("repeat every", spec["every"], 1)
    for name in ("limit", "count"):
        if name in spec:
            spec[name] = whole_number(f"repeat {name}", spec[name], 1 if name == "limit" else 0)
    if "offset" in spec:
        spec["offset"] = whole_number("repeat offset", spec["offset"], 0)
    if "tz" in spec:
        if not isinstance(spec["tz"], str):
            raise InvalidArgument("repeat tz must be an IANA zone name")
        _zone(spec["tz"])
    if "pattern" in spec:
        _check_pattern(spec["pattern"], spec.get("tz"))
    for date in ("startDate", "endDate"):
        if date in spec:
            spec[date] = _ms(spec[date])
    if "endDate" in spec and spec["endDate"] < now:
        raise InvalidArgument("End date must be greater than current timestamp")
    return spec


def _template(
    template: Mapping[str, Any] | None,
    scheduler_id: str,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[str, str, str]:
    """(name, data JSON, template opts JSON with stored short keys).

    The queue's default job options come first and the template's opts over them, as BullMQ's
    ``Queue.upsertJobScheduler`` merges them (the merged opts are stored in the scheduler)."""
    if template is None:
        template = {}
    if not isinstance(template, Mapping):
        raise InvalidArgument(f"template must be a dict, got {type(template).__name__}")
    unknown = set(template) - {"name", "data", "opts"}
    if unknown:
        raise InvalidArgument(f"a template is {{'name', 'data', 'opts'}}, got {sorted(template)}")
    name = template.get("name")
    name = scheduler_id if name is None else name
    given = template.get("opts") or {}
    if not isinstance(given, Mapping):
        raise InvalidArgument(f"template opts must be a dict, got {type(given).__name__}")
    for banned in ("jobId", "job_id", "repeat", "parent", "delay", "deduplication"):
        if banned in given:
            raise InvalidArgument(f"a scheduler template cannot set {banned}")
    opts = normalize_job_options(defaults)
    opts.update(normalize_job_options(given))
    prepared = prepare_job(name, template.get("data"), opts)  # validates name, data and opts
    given = {k: prepared.opts[k] for k in opts if k in prepared.opts}
    return name, prepared.data_json, json.dumps(encode_stored_opts(given), separators=(",", ":"))


def _scheduler_from_hash(
    scheduler_id: str, raw: Mapping[str, str], next_ms: int | None
) -> dict[str, Any]:
    """A scheduler as BullMQ's ``getJobScheduler`` describes it."""
    info: dict[str, Any] = {"key": scheduler_id, "name": raw.get("name"), "next": next_ms}
    for field, out in (
        ("ic", "iterationCount"),
        ("limit", "limit"),
        ("startDate", "startDate"),
        ("endDate", "endDate"),
        ("every", "every"),
        ("offset", "offset"),
    ):
        if raw.get(field):  # any non-empty text, as JS truthiness
            info[out] = int(float(raw[field]))
    for field in ("tz", "pattern"):
        if raw.get(field):
            info[field] = raw[field]
    if raw.get("data") or raw.get("opts"):
        template: dict[str, Any] = {}
        if raw.get("data"):
            template["data"] = json.loads(raw["data"])
        if raw.get("opts"):
            from .options import decode_stored_opts

            template["opts"] = decode_stored_opts(raw["opts"])
        info["template"] = template
    return info


def upsert(
    queue: QueueContext,
    scheduler_id: str,
    repeat: Mapping[str, Any],
    template: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> str | None:
    """Create or replace a job scheduler; the id of its first iteration (None past ``limit``).

    ``defaults`` are the queue's default job options, merged under the template's."""
    if not isinstance(scheduler_id, str) or not scheduler_id:
        raise InvalidArgument("a job scheduler id must be a non-empty string")
    now = int(time.time() * 1000)
    spec = _repeat_spec(repeat, now)
    name, data_json, template_opts = _template(template, scheduler_id, defaults)
    count = spec["count"] + 1 if spec.get("count") else 1
    if "limit" in spec and count > spec["limit"]:
        return None
    every = spec.get("every")
    next_ms: int | None = None
    if "pattern" in spec:
        if spec.get("immediately"):
            next_ms = now
        else:
            start = spec.get("startDate")
            found = cron_next(
                spec["pattern"],
                max(start, now) if start else now,
                tz=spec.get("tz"),
                end_date=spec.get("endDate"),
            )
            if found is None:
                return None
            next_ms = max(found, now)
    offset = spec.get("offset") if every and spec.get("offset") else None
    iteration_repeat = {k: v for k, v in spec.items() if k not in ("immediately", "offset")}
    iteration_repeat["count"] = count
    if offset:
        iteration_repeat["offset"] = offset
    opts = json.loads(template_opts)
    opts.update({"repeat": iteration_repeat, "timestamp": now, "repeatJobKey": scheduler_id})
    if next_ms is not None:
        opts["prevMillis"] = next_ms
    scheduler: dict[str, Any] = {"name": name}
    for key in ("tz", "pattern", "every", "limit", "startDate", "endDate"):
        if key in spec:
            scheduler[key] = spec[key]
    if offset:
        scheduler["offset"] = offset
    keys = queue.keys
    reply = queue.connection.run_script(
        "upsertJobScheduler",
        _iteration_keys(queue),
        (
            keys.base,
            OUTCOME_TTL_MS,
            scheduler_id,
            "" if next_ms is None else next_ms,
            json.dumps(scheduler, separators=(",", ":")),
            data_json,
            template_opts,
            json.dumps(opts, separators=(",", ":")),
            now,
        ),
    )
    if isinstance(reply, int):
        error = job_error(reply, queue=queue.name, job_id=scheduler_id, command=UPSERT_COMMAND)
        log.refused(
            "scheduler.upsert_refused",
            queue=queue.name,
            job_id=scheduler_id,
            code=reply,
            error=str(error),
        )
        raise error
    job_id, delay = str(reply[0]), int(reply[1])
    log.transition(
        "job.added",
        queue=queue.name,
        job_id=job_id,
        from_state=None,
        to_state="delayed" if delay > 0 else "waiting",
        scheduler=scheduler_id,
    )
    return job_id


def get(queue: QueueContext, scheduler_id: str) -> dict[str, Any] | None:
    """A scheduler as BullMQ's ``getJobScheduler`` returns it, or None."""
    reply = queue.connection.run_script("getJobScheduler", (queue.keys.repeat,), (scheduler_id,))
    if not reply:
        return None
    flat = [str(v) for v in reply[0]]
    raw = dict(zip(flat[::2], flat[1::2], strict=True))
    if not raw:
        return None
    return _scheduler_from_hash(scheduler_id, raw, int(float(reply[1])))


def get_many(
    queue: QueueContext, start: int = 0, end: int = -1, asc: bool = False
) -> list[dict[str, Any]]:
    """Schedulers ordered by next run time (``asc``) or the reverse, as BullMQ lists them."""
    command = "ZRANGE" if asc else "ZREVRANGE"
    flat = queue.connection.execute(command, queue.keys.repeat, start, end, "WITHSCORES")
    if flat and isinstance(flat[0], (list, tuple)):
        flat = [item for pair in flat for item in pair]
    pairs = [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]
    hashes = (
        queue.connection.pipeline(
            [("HGETALL", queue.keys.scheduler(scheduler_id)) for scheduler_id, _ in pairs]
        )
        if pairs
        else []
    )
    result = []
    for (scheduler_id, next_ms), raw in zip(pairs, hashes, strict=True):
        items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
        raw_map = {str(k): str(v) for k, v in items}
        if raw_map:
            result.append(_scheduler_from_hash(scheduler_id, raw_map, next_ms))
    return result


def remove(queue: QueueContext, scheduler_id: str) -> bool:
    """Delete a scheduler and its pending delayed iteration; True when it existed."""
    keys = queue.keys
    reply = queue.connection.run_script(
        "removeJobScheduler", (keys.repeat, keys.delayed, keys.events), (keys.base, scheduler_id)
    )
    removed = int(reply) == 1
    if removed:
        log.event("scheduler.removed", queue=queue.name, scheduler=scheduler_id)
    return removed


def count(queue: QueueContext) -> int:
    """How many schedulers the queue has (ZCARD of ``repeat``)."""
    return int(queue.connection.execute("ZCARD", queue.keys.repeat))
