"""A queue's counts in Prometheus' text format, byte for byte what Node's
``queue.exportPrometheusMetrics(globalVariables)`` prints for the same queue."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import getters
from .errors import InvalidArgument

if TYPE_CHECKING:
    from .context import QueueContext


def escape_label_value(value: Any) -> str:
    """A label value as the exposition format wants it: ``\\``, ``"`` and newlines escaped."""
    text = js_string(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript spells it for JSON-like values (true, null, 1, 1.5)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join("" if item is None else js_string(item) for item in value)
    return str(value)


def _labels(global_variables: Mapping[str, Any] | None) -> str:
    if global_variables is None:
        return ""
    if not isinstance(global_variables, Mapping):
        raise InvalidArgument(
            f"global_variables must be a dict of label name to value, got {global_variables!r}"
        )
    for name in global_variables:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a label name must be a non-empty string, got {name!r}")
    return "".join(
        f', {name}="{escape_label_value(value)}"' for name, value in global_variables.items()
    )


def export(queue: QueueContext, global_variables: Mapping[str, Any] | None = None) -> str:
    """The metrics text: job counts per state, completed and failed totals (no final newline)."""
    extra = _labels(global_variables)
    counts = getters.get_job_counts(queue)
    keys = queue.keys
    completed, failed = queue.connection.pipeline(
        [("HGET", keys.metrics("completed"), "count"), ("HGET", keys.metrics("failed"), "count")]
    )
    name = escape_label_value(queue.name)
    lines = [
        "# HELP bullmq_job_count Number of jobs in the queue by state",
        "# TYPE bullmq_job_count gauge",
    ]
    lines += [
        f'bullmq_job_count{{queue="{name}", state="{state}"{extra}}} {count}'
        for state, count in counts.items()
    ]
    for total, value, what in (
        ("bullmq_job_completed_total", completed, "completed"),
        ("bullmq_job_failed_total", failed, "failed"),
    ):
        lines += [
            f"# HELP {total} Total number of {what} jobs",
            f"# TYPE {total} counter",
            f'{total}{{queue="{name}"{extra}}} {_int(value)}',
        ]
    return "\n".join(lines)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
