"""The Jinja environment: package templates, autoescaping on for every template, and the
time formats the templates use (``iso``, ``ago``)."""

from __future__ import annotations

from datetime import datetime, timezone

try:
    import jinja2
except ImportError as exc:  # pragma: no cover - depends on the install
    from ..errors import ConfigurationError

    raise ConfigurationError(
        "the dashboard needs Jinja2: pip install 'bullmq-sync[dashboard]'"
    ) from exc


def environment() -> jinja2.Environment:
    """Templates from this package; everything rendered is HTML-escaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bullmq_sync.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.globals["ago"] = ago
    return env


def iso(ms: int | None) -> str:
    """Epoch milliseconds as ``2026-01-02 03:04:05 UTC`` ("" for none)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ms: int | None, now_ms: int) -> str:
    """Relative time: ``12 s ago``, ``in 3 min``."""
    if not ms:
        return ""
    delta = (now_ms - ms) / 1000
    future = delta < 0
    delta = abs(delta)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if delta >= size or unit == "s":
            amount = f"{int(delta // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return ""
