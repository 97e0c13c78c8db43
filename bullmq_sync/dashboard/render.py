"""The Jinja environment: package templates, autoescaping on for every template."""

from __future__ import annotations

try:
    import jinja2
except ImportError as exc:  # pragma: no cover - depends on the install
    from ..errors import ConfigurationError

    raise ConfigurationError(
        "the dashboard needs Jinja2: pip install 'bullmq-sync[dashboard]'"
    ) from exc


def environment() -> jinja2.Environment:
    """Templates from this package; everything rendered is HTML-escaped."""
    from .app import ago, iso

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
