"""OpenTelemetry context across BullMQ jobs, through the ``telemetry`` job option.

Node BullMQ with ``bullmq-otel`` stores the producer's trace context in the job's options as
``telemetry.metadata`` (stored ``tm``): the JSON text of the propagation carrier, e.g.
``{"traceparent":"00-<trace id>-<span id>-01"}``; ``telemetry.omitContext`` (stored ``omc``)
turns that off. This module writes and reads that carrier with the OpenTelemetry API, so a
trace started in Node continues in a Python processor and the reverse::

    queue.add("email", data, telemetry.inject())            # producer: current context
    with tracer.start_as_current_span("process emails", context=job.telemetry_context()):
        ...                                                 # processor: continue the trace

Needs the optional extra ``pip install bullmq-sync[otel]`` (opentelemetry-api); the module
itself imports without it and raises ``ConfigurationError`` when used without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, InvalidArgument

if TYPE_CHECKING:
    from .job import Job

_MISSING = "OpenTelemetry is not installed: pip install 'bullmq-sync[otel]'"


def _propagate() -> Any:
    try:
        from opentelemetry import propagate
    except ImportError as exc:  # the [otel] extra is optional
        raise ConfigurationError(_MISSING) from exc
    return propagate


def current_metadata(context: Any = None) -> str | None:
    """The carrier of ``context`` (default: the current one) as BullMQ stores it, or None
    when there is nothing to propagate (no active span, no baggage)."""
    carrier: dict[str, str] = {}
    _propagate().inject(carrier, context=context)
    if not carrier:
        return None
    return json.dumps(carrier, separators=(",", ":"), ensure_ascii=False)


def inject(opts: Mapping[str, Any] | None = None, *, context: Any = None) -> dict[str, Any]:
    """Job options ``opts`` plus ``{"telemetry": {"metadata": <current context>}}``.

    As in BullMQ, nothing is added when ``opts["telemetry"]["omitContext"]`` is true, and an
    explicit ``metadata`` already in ``opts`` is replaced by the current context (Node's
    ``Queue.add`` does the same when telemetry is configured).
    """
    if opts is not None and not isinstance(opts, Mapping):
        raise InvalidArgument(f"opts must be a dict of job options, got {opts!r}")
    out = dict(opts or {})
    given = out.get("telemetry")
    if given is not None and not isinstance(given, Mapping):
        raise InvalidArgument(f"telemetry must be {{'metadata', 'omitContext'}}, got {given!r}")
    settings = dict(given or {})
    if settings.get("omitContext"):
        return out
    metadata = current_metadata(context)
    if metadata is None:
        return out
    settings["metadata"] = metadata
    out["telemetry"] = settings
    return out


def metadata_of(job: Job) -> str | None:
    """The trace carrier stored with a job (``telemetry.metadata``), or None."""
    stored = job.raw.get("opts") if job.raw else None
    if stored:
        try:
            opts = json.loads(stored)
        except ValueError:
            opts = None
        if isinstance(opts, dict) and isinstance(opts.get("tm"), str):
            return str(opts["tm"])
    option = job.opts.get("telemetry")
    if isinstance(option, Mapping) and isinstance(option.get("metadata"), str):
        return str(option["metadata"])
    return None


def carrier_of(job: Job) -> dict[str, str]:
    """The stored carrier as a dict (``{"traceparent": ...}``); {} when there is none or it
    cannot be read (a producer's unreadable metadata must not fail the job)."""
    metadata = metadata_of(job)
    if metadata is None:
        return {}
    try:
        carrier = json.loads(metadata)
    except ValueError:
        return {}
    if not isinstance(carrier, dict):
        return {}
    return {str(k): str(v) for k, v in carrier.items() if isinstance(v, (str, int, float))}


def extract(job: Job, context: Any = None) -> Any:
    """An OpenTelemetry ``Context`` whose parent is the producer's span (``context`` or the
    current one when the job carries none): pass it as ``context=`` when starting a span."""
    return _propagate().extract(carrier_of(job), context=context)
