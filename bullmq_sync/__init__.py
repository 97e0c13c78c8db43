"""bullmq-sync: a synchronous, thread-safe Python client for BullMQ queues."""

from .cluster import ClusterConnection
from .connection import Connection, FairConnectionPool, FairSentinelConnectionPool, SentinelTarget
from .errors import (
    BullMQSyncError,
    ClientClosed,
    ConfigurationError,
    DelayedError,  # worker steps
    FlowSpansSlots,  # flow introspection and retry_tree
    FlowTooLarge,  # flow introspection and retry_tree
    InvalidArgument,
    JobBelongsToJobScheduler,
    JobError,
    JobFailed,  # waiting for results
    JobHasFailedChildren,
    JobLockMismatch,
    JobLockNotFound,
    JobNotFound,
    JobNotInState,
    JobPendingChildren,
    JobWaitTimeout,  # waiting for results
    ParentJobCannotBeReplaced,
    ParentJobNotFound,
    PoolTimeout,
    QueueHasActiveJobs,
    RateLimitError,  # worker steps
    RedisUnavailable,
    SchedulerJobIdCollision,
    SchedulerJobSlotsBusy,
    ScriptFailed,
    UnknownJobError,
    UnrecoverableError,
    WaitingChildrenError,  # worker steps
    WaitingError,  # worker steps
)

# -- queue events --
from .events import QueueEvent, QueueEvents

# -- flows (FlowProducer) --
from .flow import FlowProducer, JobNode
from .flow_retry import RetriedJob  # flow introspection and retry_tree
from .job import Job
from .keys import QueueKeys
from .queue import Queue
from .states import JobState
from .worker import Worker

# -- worker: cancellation signal, child processes --
from .worker_parts.pool import ChildExited
from .worker_parts.signals import CancelSignal, JobCancelled

__version__ = "0.1.0"

__all__ = [
    "BullMQSyncError",
    "ClientClosed",
    "ConfigurationError",
    "ClusterConnection",
    "Connection",
    "FairConnectionPool",
    "FairSentinelConnectionPool",
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
    "QueueHasActiveJobs",
    "Queue",
    "QueueKeys",
    "RedisUnavailable",
    "SchedulerJobIdCollision",
    "SchedulerJobSlotsBusy",
    "SentinelTarget",
    "ScriptFailed",
    "UnknownJobError",
    "__version__",
    # -- worker --
    "UnrecoverableError",
    "Worker",
    # -- queue events --
    "QueueEvent",
    "QueueEvents",
    # -- flows (FlowProducer) --
    "FlowProducer",
    "JobNode",
    # -- flow introspection and retry_tree --
    "FlowSpansSlots",
    "FlowTooLarge",
    "RetriedJob",
    # -- worker steps --
    "DelayedError",
    "RateLimitError",
    "WaitingChildrenError",
    "WaitingError",
    # -- waiting for results, workers, counts and metrics --
    "JobFailed",
    "JobWaitTimeout",
    # -- worker: cancellation signal, child processes --
    "CancelSignal",
    "ChildExited",
    "JobCancelled",
]
