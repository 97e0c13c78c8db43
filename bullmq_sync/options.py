"""BullMQ's stored job options (the ``opts`` field) <-> Python. Pure, no I/O.

BullMQ stores a few options under short keys (``fpof`` for failParentOnFailure, ...); this
module is the only one that knows them.
"""

from __future__ import annotations

import json
from typing import Any

SHORT_TO_LONG = {
    "de": "deduplication",
    "fpof": "failParentOnFailure",
    "cpof": "continueParentOnFailure",
    "idof": "ignoreDependencyOnFailure",
    "rdof": "removeDependencyOnFailure",
    "kl": "keepLogs",
    "tm": "telemetryMetadata",
    "omc": "omitContext",
}
LONG_TO_SHORT = {long: short for short, long in SHORT_TO_LONG.items()}


def decode_stored_opts(raw: str | None) -> dict[str, Any]:
    """The ``opts`` hash field as a dict with BullMQ's public (long) option names."""
    if not raw:
        return {}
    try:
        stored = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(stored, dict):
        return {}
    return {SHORT_TO_LONG.get(key, key): value for key, value in stored.items()}


def encode_stored_opts(opts: dict[str, Any]) -> dict[str, Any]:
    """Public option names -> the short keys BullMQ stores."""
    return {LONG_TO_SHORT.get(key, key): value for key, value in opts.items()}
