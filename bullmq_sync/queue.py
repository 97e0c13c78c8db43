"""A BullMQ queue seen from synchronous Python: where its jobs live and how to reach Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from redis.cluster import RedisCluster

from . import getters, management, producer
from .connection import TOKENS, Connection
from .errors import ClientClosed, InvalidArgument
from .job import Job
from .keys import QueueKeys
from .options import normalize_job_options
from .states import JobState

ConnectionLike = Connection | str | redis.Redis | redis.ConnectionPool | RedisCluster | None


class Queue:
    """A BullMQ queue: ``Queue("emails", connection="redis://localhost:6379")``.

    ``connection`` is a URL, a ``redis.Redis``, a pool or a shared ``Connection`` (many
    queues, one pool). BullMQ's option-dict form works too: ``Queue("q", {"prefix": "app",
    "connection": url})``. Use as a context manager, or call ``close()``; a connection that
    was passed in is left open.
    """

    def __init__(
        self,
        name: str,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str | None = None,
        default_job_options: Mapping[str, Any] | None = None,
    ) -> None:
        options = dict(opts or {})
        unknown = set(options) - {"connection", "prefix", "defaultJobOptions"}
        if unknown:
            raise InvalidArgument(f"unsupported Queue option(s): {', '.join(sorted(unknown))}")
        if connection is None:
            connection = options.get("connection")
        if prefix is None:
            prefix = options.get("prefix", "bull")
        self.keys = QueueKeys(name, prefix=prefix)
        if default_job_options is None:
            default_job_options = options.get("defaultJobOptions")
        self.default_job_options: dict[str, Any] = normalize_job_options(default_job_options)
        """Options every job added through this queue starts from (BullMQ's public names)."""
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self._closed = False
        # -- cluster/sentinel: a cluster refuses keys spanning hash slots --------
        try:
            self.connection.check_queue_keys(self.keys)
        except BaseException:
            self.close()
            raise

    @property
    def name(self) -> str:
        return self.keys.name

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    @property
    def qualified_name(self) -> str:
        return self.keys.qualified_name

    def __repr__(self) -> str:
        return f"<Queue {self.qualified_name!r} on {self.connection!r}>"

    def next_token(self) -> str:
        """A fresh call token for a transition (see ``connection``)."""
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")
        return TOKENS.next()

    def get_job(self, job_id: str | int) -> Job | None:
        """The job with that id, or None."""
        return Job.from_id(self, job_id)

    getJob = get_job

    def close(self) -> None:
        """Release this queue; closes the connection only if the queue created it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_connection:
            self.connection.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producing and managing jobs ----

    def add(
        self,
        name: str,
        data: Any = None,
        opts: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        delay: int | None = None,
        priority: int | None = None,
        lifo: bool | None = None,
        attempts: int | None = None,
        backoff: int | Mapping[str, Any] | None = None,
        remove_on_complete: bool | int | Mapping[str, int] | None = None,
        remove_on_fail: bool | int | Mapping[str, int] | None = None,
        timestamp: int | None = None,
        parent: Mapping[str, str] | Job | None = None,
        deduplication: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> Job:
        """Add a job (BullMQ's ``Queue.add``); options as keywords or a BullMQ opts dict."""
        overrides: dict[str, Any] = {
            "jobId": job_id,
            "delay": delay,
            "priority": priority,
            "lifo": lifo or None,
            "attempts": attempts,
            "backoff": backoff,
            "removeOnComplete": remove_on_complete,
            "removeOnFail": remove_on_fail,
            "timestamp": timestamp,
            "parent": parent,
            "deduplication": deduplication,
            **more,
        }
        return producer.add(self, name, data, opts, overrides)

    def add_bulk(self, jobs: Iterable[Any]) -> list[Job]:
        """Add many jobs atomically in one round trip: ``[{"name", "data", "opts"}, ...]``."""
        return producer.add_bulk(self, jobs)

    addBulk = add_bulk

    def get_jobs(
        self,
        types: Iterable[str | JobState] | str | JobState | None = None,
        start: int = 0,
        end: int = -1,
        asc: bool = False,
    ) -> list[Job]:
        """Jobs in the given states (each paged by ``start``..``end``), newest first unless asc."""
        return getters.get_jobs(self, types, start, end, asc)

    def get_job_counts(self, *types: str | JobState) -> dict[str, int]:
        """``{type: count}`` for the given types (all types when none are given)."""
        return getters.get_job_counts(self, *types)

    def get_job_count_by_types(self, *types: str | JobState) -> int:
        """The number of jobs in any of the given types."""
        return getters.get_job_count_by_types(self, *types)

    def count(self) -> int:
        """Jobs waiting, delayed, prioritized or waiting for children."""
        return getters.count(self)

    def get_waiting(self, start: int = 0, end: int = -1) -> list[Job]:
        """Waiting jobs, next to run first."""
        return self.get_jobs(["waiting"], start, end, True)

    def get_active(self, start: int = 0, end: int = -1) -> list[Job]:
        """Active jobs, oldest first."""
        return self.get_jobs(["active"], start, end, True)

    def get_delayed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Delayed jobs, soonest due first."""
        return self.get_jobs(["delayed"], start, end, True)

    def get_prioritized(self, start: int = 0, end: int = -1) -> list[Job]:
        """Prioritized jobs, next to run first."""
        return self.get_jobs(["prioritized"], start, end, True)

    def get_waiting_children(self, start: int = 0, end: int = -1) -> list[Job]:
        """Parents waiting for their children."""
        return self.get_jobs(["waiting-children"], start, end, True)

    def get_completed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Completed jobs, most recent first."""
        return self.get_jobs(["completed"], start, end, False)

    def get_failed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Failed jobs, most recent first."""
        return self.get_jobs(["failed"], start, end, False)

    def get_job_state(self, job_id: str | int) -> JobState:
        """Where the job is now (``JobState.UNKNOWN`` if nowhere)."""
        return getters.get_job_state(self, job_id)

    def get_job_logs(
        self, job_id: str | int, start: int = 0, end: int = -1, asc: bool = True
    ) -> tuple[list[str], int]:
        """A page of a job's log rows and the total number of rows."""
        return getters.get_job_logs(self, job_id, start, end, asc)

    def retry_jobs(
        self,
        state: str | JobState = "failed",
        count: int = 1000,
        timestamp: int | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Retry every failed (or completed) job finished by ``timestamp``, ``count`` per
        script call; returns how many moved. ``progress(total_so_far)`` runs per batch."""
        return management.retry_jobs(self, state, count, timestamp, progress)

    def promote_jobs(
        self, count: int = 1000, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Move every delayed job to wait now, ``count`` per script call; returns how many."""
        return management.promote_jobs(self, count, progress)

    getJobs = get_jobs
    getJobCounts = get_job_counts
    getJobCountByTypes = get_job_count_by_types
    getWaiting = get_waiting
    getActive = get_active
    getDelayed = get_delayed
    getPrioritized = get_prioritized
    getWaitingChildren = get_waiting_children
    getCompleted = get_completed
    getFailed = get_failed
    getJobState = get_job_state
    getJobLogs = get_job_logs
    retryJobs = retry_jobs
    promoteJobs = promote_jobs

    def pause(self) -> None:
        """Pause the queue (workers take no new jobs; adds still land in wait)."""
        management.pause(self)

    def resume(self) -> None:
        """Resume the queue (merging a legacy BullMQ 5 ``paused`` list)."""
        management.resume(self)

    def is_paused(self) -> bool:
        """True when the queue is paused."""
        return management.is_paused(self)

    def drain(self, delayed: bool = False) -> int:
        """Delete all waiting/prioritized jobs (and delayed with ``delayed=True``); how many."""
        return management.drain(self, delayed)

    def clean(self, grace: int, limit: int = 0, state: str | JobState = "completed") -> list[str]:
        """Delete up to ``limit`` (0 = all) ``state`` jobs older than ``grace`` ms; their ids."""
        return management.clean(self, grace, limit, state)

    def obliterate(self, force: bool = False) -> None:
        """Delete the queue and every job in it (refused with active jobs unless forced)."""
        management.obliterate(self, force)

    def set_global_concurrency(self, concurrency: int) -> None:
        """Limit how many jobs of this queue run at once across all workers (meta field)."""
        management.set_global_concurrency(self, concurrency)

    def get_global_concurrency(self) -> int | None:
        """The global concurrency limit, or None."""
        return management.get_global_concurrency(self)

    def remove_global_concurrency(self) -> None:
        """Lift the global concurrency limit."""
        management.remove_global_concurrency(self)

    def set_global_rate_limit(self, max_jobs: int, duration: int) -> None:
        """At most ``max_jobs`` jobs started per ``duration`` ms across all workers."""
        management.set_global_rate_limit(self, max_jobs, duration)

    def remove_global_rate_limit(self) -> None:
        """Lift the global rate limit."""
        management.remove_global_rate_limit(self)

    isPaused = is_paused
    setGlobalConcurrency = set_global_concurrency
    getGlobalConcurrency = get_global_concurrency
    removeGlobalConcurrency = remove_global_concurrency
    setGlobalRateLimit = set_global_rate_limit
    removeGlobalRateLimit = remove_global_rate_limit

    # -- deduplication (producer.py; BullMQ's getDeduplicationJobId / removeDeduplicationKey)

    def get_deduplication_job_id(self, dedup_id: str) -> str | None:
        """The id of the job that owns a deduplication id now, or None."""
        owner = self.connection.execute("GET", self.keys.dedup(_dedup_id(dedup_id)))
        return None if owner is None else str(owner)

    def remove_deduplication_key(self, dedup_id: str) -> int:
        """Forget a deduplication id so the next add with it is stored; 1 if a key went."""
        return int(self.connection.execute("DEL", self.keys.dedup(_dedup_id(dedup_id))))

    getDeduplicationJobId = get_deduplication_job_id
    removeDeduplicationKey = remove_deduplication_key

    # -- manual rate limit and worker metrics (worker_steps.py) ---------------------------

    def rate_limit(self, expire_ms: int) -> None:
        """Rate-limit this queue for ``expire_ms`` ms (BullMQ's ``Queue.rateLimit``)."""
        from . import worker_steps

        worker_steps.rate_limit(self, expire_ms)

    def get_rate_limit_ttl(self, max_jobs: int | None = None) -> int:
        """Ms this queue stays rate limited: 0 when not limited (BullMQ's getRateLimitTtl)."""
        from . import worker_steps

        return worker_steps.rate_limit_ttl(self, max_jobs)

    def get_metrics(self, type: str, start: int = 0, end: int = -1) -> dict[str, Any]:
        """Per-minute ``completed``/``failed`` counts collected by workers with ``metrics``."""
        from . import worker_steps

        return worker_steps.get_metrics(self, type, start, end)

    rateLimit = rate_limit
    getRateLimitTtl = get_rate_limit_ttl
    getMetrics = get_metrics

    # -- job schedulers (schedulers.py; BullMQ 6 upsertJobScheduler & co) -------------------

    def upsert_job_scheduler(
        self,
        scheduler_id: str,
        repeat: Mapping[str, Any],
        template: Mapping[str, Any] | None = None,
    ) -> Job | None:
        """Create or replace a job scheduler; returns its first iteration (None past limit)."""
        from . import schedulers

        return schedulers.upsert(self, scheduler_id, repeat, template)

    def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        """A job scheduler as BullMQ's getJobScheduler describes it, or None."""
        from . import schedulers

        return schedulers.get(self, scheduler_id)

    def get_job_schedulers(
        self, start: int = 0, end: int = -1, asc: bool = False
    ) -> list[dict[str, Any]]:
        """Job schedulers by next run time (latest first unless ``asc``)."""
        from . import schedulers

        return schedulers.get_many(self, start, end, asc)

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Delete a job scheduler and its pending iteration; True when it existed."""
        from . import schedulers

        return schedulers.remove(self, scheduler_id)

    def get_job_schedulers_count(self) -> int:
        """The number of job schedulers."""
        from . import schedulers

        return schedulers.count(self)

    upsertJobScheduler = upsert_job_scheduler
    getJobScheduler = get_job_scheduler
    getJobSchedulers = get_job_schedulers
    removeJobScheduler = remove_job_scheduler
    getJobSchedulersCount = get_job_schedulers_count
    # -- end of job schedulers ----------------------------------------------------------------

    # -- display ----------------------------------------------------

    def _repr_html_(self) -> str:
        """Jupyter's view: name, connection (password redacted), paused, counts per state."""
        from . import display
        from .errors import BullMQSyncError

        try:
            with self.connection.short_budget():
                counts: dict[str, int] | None = self.get_job_counts()
                paused: bool | None = self.is_paused()
            error = None
        except BullMQSyncError as exc:
            counts, paused, error = None, None, str(exc)
        return display.queue_html(self, counts, paused, error)


def _dedup_id(dedup_id: object) -> str:
    """A deduplication id as BullMQ keys it (a non-empty string), else ``InvalidArgument``."""
    if not isinstance(dedup_id, str) or not dedup_id:
        raise InvalidArgument(f"deduplication id must be a non-empty string, got {dedup_id!r}")
    return dedup_id
