"""Terminal output for the CLI: tables, ages, a progress bar, time parsing. No Redis here."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from typing import IO, Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def parse_time(text: str, *, now: int | None = None) -> int:
    """``--finished-before`` value -> epoch ms.

    Accepts epoch milliseconds (``1700000000000``), a duration meaning "that long ago"
    (``90s``, ``30m``, ``2h``, ``7d``, ``1w``) or an ISO 8601 date/time (naive = local time).
    """
    value = text.strip()
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if match:
        span = int(float(match.group(1)) * _UNIT_MS[match.group(2)])
        return (now if now is not None else now_ms()) - span
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use epoch ms, a duration like 2h or 7d, or ISO 8601"
        ) from None
    return int(moment.timestamp() * 1000)


def age(timestamp_ms: int | None, *, now: int | None = None) -> str:
    """A short age: ``42s``, ``5m``, ``3h``, ``2d`` (``-`` when unknown)."""
    if not timestamp_ms:
        return "-"
    seconds = max(0, ((now if now is not None else now_ms()) - timestamp_ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def one_line(text: object, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(str(text).split()) if text is not None else ""
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned plain-text table (last column not padded)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def dumps(value: Any) -> str:
    """Pretty JSON (non-ASCII kept, unknown objects as strings)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class ProgressBar:
    """``[#####.....]  512/1024  50%`` redrawn in place on a terminal; silent elsewhere."""

    def __init__(self, stream: IO[str], total: int, *, label: str = "", width: int = 30) -> None:
        self.stream = stream
        self.total = max(0, total)
        self.label = label
        self.width = width
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.done = 0
        self._last_draw = 0.0

    def update(self, done: int) -> None:
        """Show ``done`` items finished (redraws at most 20 times a second)."""
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.05 and done < self.total:
            return
        self._last_draw = now
        total = max(self.total, done, 1)
        filled = int(self.width * done / total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label}[{bar}] {done}/{total} {int(100 * done / total):3d}%")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self.update(self.done)
            self.stream.write("\n")
            self.stream.flush()
