"""BullMQ's key layout for one queue: the only module that spells a key suffix.

Pure: no I/O. ``QueueKeys("emails", prefix="bull").wait == "bull:emails:wait"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import InvalidArgument

SUFFIXES = (
    "wait",
    "active",
    "paused",
    "waiting-children",
    "id",
    "delayed",
    "prioritized",
    "stalled-check",
    "completed",
    "failed",
    "stalled",
    "repeat",
    "limiter",
    "meta",
    "events",
    "pc",
    "marker",
    "de",
)
"""Per-queue key suffixes, as BullMQ's ``QueueKeys`` lists them."""

OP_SEGMENT = "bqs:op:"
"""Our own, short-lived call outcomes: ``<prefix>:<queue>:bqs:op:<token>`` (bqs: bullmq-sync).

They hold the reply of a transition for as long as the caller's retries can reach
(``Connection.outcome_ttl_ms``, 38.8 s by default) so that a call retried after a lost reply
learns the real outcome instead of applying the transition twice; transitions whose outcome
the job's own state proves store none (see the README's exactly-once section). A token
``<nonce><n>#<field>`` names field ``<field>`` of the hash ``...bqs:op:<nonce><n>``, shared by
128 consecutive calls of one process (see ``lua/includes/callOutcome.lua``); a token without
``#`` names a key of its own. The segment contains a colon, so it can never be mistaken for a
BullMQ job id.
"""

MAX_JOB_ID_LENGTH = 1024
"""The longest job id accepted (BullMQ sets no limit; ours keeps keys reasonable)."""

_HASH_TAG = re.compile(r"\{([^}]*)\}")


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{kind} must be a non-empty string, got {value!r}")
    if ":" in value and kind == "queue name":
        raise InvalidArgument(f"queue name must not contain ':' ({value!r}), as in BullMQ")


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` as BullMQ's id string, or raise ``InvalidArgument``."""
    if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
        raise InvalidArgument(f"job id must be a string, got {type(job_id).__name__}")
    text = str(job_id)
    if not text:
        raise InvalidArgument("job id must not be empty")
    if len(text) > MAX_JOB_ID_LENGTH:
        raise InvalidArgument(
            f"job id is {len(text)} characters long; the limit is {MAX_JOB_ID_LENGTH}"
        )
    return text


@dataclass(frozen=True)
class QueueKeys:
    """Key names of one BullMQ queue (``<prefix>:<queue>:<suffix>``), computed once."""

    name: str
    prefix: str = "bull"
    base: str = field(init=False)
    wait: str = field(init=False, repr=False)
    active: str = field(init=False, repr=False)
    paused: str = field(init=False, repr=False)
    waiting_children: str = field(init=False, repr=False)
    id: str = field(init=False, repr=False)
    delayed: str = field(init=False, repr=False)
    prioritized: str = field(init=False, repr=False)
    stalled_check: str = field(init=False, repr=False)
    completed: str = field(init=False, repr=False)
    failed: str = field(init=False, repr=False)
    stalled: str = field(init=False, repr=False)
    repeat: str = field(init=False, repr=False)
    limiter: str = field(init=False, repr=False)
    meta: str = field(init=False, repr=False)
    events: str = field(init=False, repr=False)
    pc: str = field(init=False, repr=False)
    marker: str = field(init=False, repr=False)
    de: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_name("queue name", self.name)
        _check_name("prefix", self.prefix)
        base = f"{self.prefix}:{self.name}:"
        object.__setattr__(self, "base", base)
        for suffix in SUFFIXES:
            object.__setattr__(self, suffix.replace("-", "_"), base + suffix)

    @property
    def qualified_name(self) -> str:
        """``<prefix>:<queue>``, the form BullMQ stores as a parent's ``queueKey``."""
        return f"{self.prefix}:{self.name}"

    def state(self, state: str) -> str:
        """The key of a state's structure (``wait``, ``failed``, ...)."""
        return self.base + state

    def job(self, job_id: str) -> str:
        """The job hash key."""
        return self.base + job_id

    def job_sub(self, job_id: str, sub: str) -> str:
        """A job sub-key: ``lock``, ``logs``, ``dependencies``, ``processed``, ..."""
        return f"{self.base}{job_id}:{sub}"

    # -- deduplication ------------------------------------------------------------------

    def dedup(self, dedup_id: str) -> str:
        """``<prefix>:<queue>:de:<id>``: the id of the job owning a deduplication id."""
        return f"{self.base}de:{dedup_id}"

    def dedup_next(self, dedup_id: str) -> str:
        """``<prefix>:<queue>:dn:<id>``: the job parked by ``keepLastIfActive``."""
        return f"{self.base}dn:{dedup_id}"

    # -- job schedulers (schedulers.py) -------------------------------------------------------

    def scheduler(self, scheduler_id: str) -> str:
        """``<prefix>:<queue>:repeat:<id>``: a job scheduler's hash."""
        return f"{self.repeat}:{scheduler_id}"

    # -- worker metrics (worker_steps.py) --------------------------------------------------

    def metrics(self, kind: str) -> str:
        """``<prefix>:<queue>:metrics:<completed|failed>``: count, prevTS, prevCount."""
        return f"{self.base}metrics:{kind}"

    def metrics_data(self, kind: str) -> str:
        """``<prefix>:<queue>:metrics:<kind>:data``: per-minute counts, newest first."""
        return f"{self.base}metrics:{kind}:data"

    def op(self, token: str) -> str:
        """The outcome slot of one transition call (see ``OP_SEGMENT``)."""
        return self.base + OP_SEGMENT + token

    def hash_slot_tag(self) -> str:
        """The part of the keys Redis Cluster hashes (a ``{tag}``, else the whole key)."""
        match = _HASH_TAG.search(self.base)
        if match and match.group(1):
            return match.group(1)
        return ""


def split_job_key(job_key: str) -> tuple[str, str]:
    """``"bull:q:42"`` -> (``"bull:q:"``, ``"42"``), as BullMQ derives ids from job keys."""
    base, _, job_id = job_key.rpartition(":")
    return base + ":", job_id
