"""Job states, spelled as BullMQ spells them."""

from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    """A job's state; the values are BullMQ's strings (``JobState.WAITING == "waiting"``)."""

    WAITING = "waiting"
    ACTIVE = "active"
    DELAYED = "delayed"
    PRIORITIZED = "prioritized"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING_CHILDREN = "waiting-children"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


FINISHED_STATES = frozenset({JobState.COMPLETED, JobState.FAILED})
"""The states ``Job.retry`` accepts."""
