"""How jobs and queues look in Jupyter (``_repr_html_``) and in a terminal (``repr``).

Pure formatting: ``job_html``/``queue_html`` take the facts (state, counts) already read, so
the only Redis reads are the ones ``Job._repr_html_``/``Queue._repr_html_`` make first. Every
value that came from users (names, data, reasons, return values) is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job
    from .queue import Queue

MAX_VALUE_CHARS = 2000
"""Longer JSON values (data, return value, options) are cut in the HTML view."""

MAX_STACK_LINES = 12

_STATE_COLORS = {
    "completed": "#2e7d32",
    "failed": "#c62828",
    "active": "#1565c0",
    "waiting": "#6d4c41",
    "prioritized": "#6d4c41",
    "delayed": "#ef6c00",
    "waiting-children": "#6a1b9a",
}

_STYLE = (
    "border-collapse:collapse;font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px;text-align:left"
)
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;vertical-align:top;text-align:left"


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as ``2026-11-29 11:40:22.123 UTC`` (empty for none)."""
    if not ms:
        return ""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def _json(value: Any) -> str:
    try:
        text = json.dumps(value, indent=1, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters)"
    return text


def _pre(text: str) -> str:
    return f'<pre style="margin:0;white-space:pre-wrap">{html.escape(text)}</pre>'


def _state_badge(state: str, text: str | None = None) -> str:
    color = _STATE_COLORS.get(state, "#616161")
    return f'<b style="color:{color}">{html.escape(state if text is None else text)}</b>'


def _rows(rows: Sequence[tuple[str, str]]) -> str:
    """Table rows of (label, already-safe HTML)."""
    return "".join(
        f'<tr><th style="{_CELL}">{html.escape(label)}</th><td style="{_CELL}">{cell}</td></tr>'
        for label, cell in rows
    )


def attempts_text(job: Job) -> str:
    """``2/3`` (made / allowed), or ``2`` when the job has no ``attempts`` option."""
    allowed = job.opts.get("attempts")
    return f"{job.attempts_made}/{allowed}" if allowed else str(job.attempts_made)


def job_repr(job: Job) -> str:
    """``<Job 'bull:emails' 42 'welcome' attempts=1/3 failed: boom>`` (no Redis call)."""
    parts = [f"<Job {job.queue_qualified_name!r} {job.id} {job.name!r}"]
    parts.append(f"attempts={attempts_text(job)}")
    due = job.timestamp + job.delay if job.delay and job.timestamp else 0
    if job.finished_on:
        parts.append("failed" if job.failed_reason is not None else "finished")
    elif due > time.time() * 1000 and not job.processed_on:
        # Added with a delay that has not run out (promote() sets delay to 0): still delayed.
        parts.append(f"delayed until {format_time(due)}")
    if job.failed_reason is not None:
        reason = " ".join(str(job.failed_reason).split())
        parts[-1] += f": {reason[:60]}{'…' if len(reason) > 60 else ''}"
    return " ".join(parts) + ">"


def job_html(job: Job, state: str | None) -> str:
    """An HTML table of one job; ``state`` is what ``job.get_state()`` said (or None)."""
    rows: list[tuple[str, str]] = [
        ("id", html.escape(job.id)),
        ("name", html.escape(job.name)),
        ("queue", html.escape(job.queue_qualified_name)),
        ("state", _state_badge(state) if state else "<i>unknown</i>"),
        ("attempts", html.escape(f"{attempts_text(job)} made, {job.attempts_started} started")),
        ("created", html.escape(format_time(job.timestamp))),
    ]
    if job.delay:
        due = format_time(job.timestamp + job.delay)
        rows.append(("delay", html.escape(f"{job.delay} ms (due {due})")))
    if job.priority:
        rows.append(("priority", html.escape(str(job.priority))))
    if job.processed_on:
        rows.append(("processed", html.escape(format_time(job.processed_on))))
    if job.finished_on:
        rows.append(("finished", html.escape(format_time(job.finished_on))))
    if job.progress not in (0, None):
        rows.append(("progress", _pre(_json(job.progress))))
    if job.failed_reason is not None:
        reason = _pre(job.failed_reason)
        rows.append(("failed reason", f'<span style="color:#c62828">{reason}</span>'))
    if job.stacktrace:
        lines = "\n".join(str(s) for s in job.stacktrace[-1:])
        cut = "\n".join(lines.splitlines()[:MAX_STACK_LINES])
        rows.append(("stacktrace", f"<details><summary>last</summary>{_pre(cut)}</details>"))
    if job.return_value is not None:
        rows.append(("return value", _pre(_json(job.return_value))))
    rows.append(("data", _pre(_json(job.data))))
    if job.opts:
        options = _pre(_json(job.opts))
        rows.append(("opts", f"<details><summary>options</summary>{options}</details>"))
    if job.parent_key:
        rows.append(("parent", html.escape(job.parent_key)))
    return f'<table style="{_STYLE}">{_rows(rows)}</table>'


def queue_html(
    queue: Queue, counts: Mapping[str, int] | None, paused: bool | None, error: str | None = None
) -> str:
    """An HTML table of a queue: name, connection, paused, counts per state."""
    rows: list[tuple[str, str]] = [
        ("queue", html.escape(queue.qualified_name)),
        ("connection", html.escape(repr(queue.connection))),
    ]
    if paused is not None:
        rows.append(("paused", "yes" if paused else "no"))
    if error is not None:
        rows.append(("error", f'<span style="color:#c62828">{html.escape(error)}</span>'))
    if counts is not None:
        for state, number in counts.items():
            failing = bool(number) and state == "failed"
            shown = _state_badge(state, str(number)) if failing else str(number)
            rows.append((state, shown))
        rows.append(("total", str(sum(counts.values()))))
    return f'<table style="{_STYLE}">{_rows(rows)}</table>'
