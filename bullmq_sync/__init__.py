"""bullmq-sync: a synchronous, thread-safe Python client for BullMQ queues."""

from .connection import Connection, FairConnectionPool
from .errors import (
    BullMQSyncError,
    ClientClosed,
    ConfigurationError,
    InvalidArgument,
    JobBelongsToJobScheduler,
    JobError,
    JobHasFailedChildren,
    JobLockMismatch,
    JobLockNotFound,
    JobNotFound,
    JobNotInState,
    JobPendingChildren,
    ParentJobCannotBeReplaced,
    ParentJobNotFound,
    PoolTimeout,
    RedisUnavailable,
    SchedulerJobIdCollision,
    SchedulerJobSlotsBusy,
    ScriptFailed,
    UnknownJobError,
    UnrecoverableError,
)

# -- queue events (issue 3, part 5) --
from .events import QueueEvent, QueueEvents
from .job import Job
from .keys import QueueKeys
from .queue import Queue
from .states import JobState
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "BullMQSyncError",
    "ClientClosed",
    "ConfigurationError",
    "Connection",
    "FairConnectionPool",
    "InvalidArgument",
    "Job",
    "JobBelongsToJobScheduler",
    "JobError",
    "JobHasFailedChildren",
    "JobLockMismatch",
    "JobLockNotFound",
    "JobNotFound",
    "JobNotInState",
    "JobPendingChildren",
    "JobState",
    "ParentJobCannotBeReplaced",
    "ParentJobNotFound",
    "PoolTimeout",
    "Queue",
    "QueueKeys",
    "RedisUnavailable",
    "SchedulerJobIdCollision",
    "SchedulerJobSlotsBusy",
    "ScriptFailed",
    "UnknownJobError",
    "__version__",
    # -- worker (issue 4) --
    "UnrecoverableError",
    "Worker",
    # -- queue events (issue 3, part 5) --
    "QueueEvent",
    "QueueEvents",
]
