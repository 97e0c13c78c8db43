"""A BullMQ queue seen from synchronous Python: where its jobs live and how to reach Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from redis.cluster import RedisCluster

from . import (
    display,
    getters,
    job_ops,
    management,
    node_args,
    producer,
    prometheus,
    schedulers,
    worker_steps,
    workers_list,
)
from .connection import TOKENS, Connection
from .errors import BullMQSyncError, ClientClosed, InvalidArgument
from .job import Job
from .keys import QueueKeys, validate_job_id
from .options import normalize_job_options
from .states import JobState

ConnectionLike = Connection | str | redis.Redis | redis.ConnectionPool | RedisCluster | None


class Queue:
    """A BullMQ queue: ``Queue("emails", connection="redis://localhost:6379")``.

    ``connection`` is a URL, a ``redis.Redis``, a pool or a shared ``Connection`` (many
    queues, one pool). BullMQ's option-dict form works too: ``Queue("q", {"prefix": "app",
    "connection": url})`` (every QueueOptions key of BullMQ 6.7 is mapped or refused, see
    ``node_args``). ``events_max_len`` (Node's ``streams.events.maxLen``) is written to the
    queue meta as ``opts.maxLenEvents``, which caps the events stream for every client. Use as
    a context manager, or call ``close()``; a connection that was passed in is left open.
    """

    def __init__(
        self,
        name: str,
        opts: Mapping[str, Any] | None = None,
        *,
        connection: ConnectionLike = None,
        prefix: str | None = None,
        default_job_options: Mapping[str, Any] | None = None,
        events_max_len: int | None = None,
    ) -> None:
        options = node_args.parse("Queue", opts)
        if connection is None:
            connection = options.get("connection")
        if prefix is None:
            prefix = options.get("prefix", "bull")
        self.keys = QueueKeys(name, prefix=prefix)
        if default_job_options is None:
            default_job_options = options.get("default_job_options")
        if events_max_len is None:
            events_max_len = options.get("events_max_len")
        else:
            events_max_len = node_args.whole(0)("events_max_len", events_max_len)
        if events_max_len is not None and options.get("skip_metas_update"):
            raise InvalidArgument(
                "streams.events.maxLen is stored in the queue meta, which skipMetasUpdate "
                "forbids writing: give one or the other"
            )
        self.default_job_options: dict[str, Any] = normalize_job_options(default_job_options)
        """Options every job added through this queue starts from (BullMQ's public names)."""
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self._closed = False
        # -- cluster/sentinel: a cluster refuses keys spanning hash slots --------
        try:
            self.connection.check_queue_keys(self.keys)
            if events_max_len is not None:
                management.set_events_max_len(self, events_max_len)
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
        added = producer.add(self, name, data, opts, overrides, self.default_job_options)
        return Job.from_added(self, added)

    def add_bulk(self, jobs: Iterable[Any]) -> list[Job]:
        """Add many jobs atomically in one round trip: ``[{"name", "data", "opts"}, ...]``."""
        added = producer.add_bulk(self, jobs, self.default_job_options)
        return [Job.from_added(self, one) for one in added]

    addBulk = add_bulk

    def get_jobs(
        self,
        types: Iterable[str | JobState] | str | JobState | None = None,
        start: int = 0,
        end: int = -1,
        asc: bool = False,
    ) -> list[Job]:
        """Jobs in the given states (each paged by ``start``..``end``), newest first unless asc."""
        return [Job.from_hash(self, *job) for job in getters.get_jobs(self, types, start, end, asc)]

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
        state: str | JobState | Mapping[str, Any] = "failed",
        count: int = 1000,
        timestamp: int | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Retry every failed (or completed) job finished by ``timestamp``, ``count`` per
        script call; returns how many moved. ``progress(total_so_far)`` runs per batch.
        Node's ``{"count", "state", "timestamp"}`` dict is accepted as first argument."""
        if isinstance(state, Mapping):
            if count != 1000 or timestamp is not None:
                raise InvalidArgument("retry_jobs: give Node's options dict or arguments, not both")
            return self.retry_jobs(
                **node_args.parse("Queue.retryJobs", state), progress=progress
            )
        return management.retry_jobs(self, state, count, timestamp, progress)

    def promote_jobs(
        self,
        count: int | Mapping[str, Any] = 1000,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Move every delayed job to wait now, ``count`` per script call; returns how many.
        Node's ``{"count": n}`` dict is accepted as first argument."""
        if isinstance(count, Mapping):
            return self.promote_jobs(
                **node_args.parse("Queue.promoteJobs", count), progress=progress
            )
        return management.promote_jobs(self, count, progress)

    def retryJobs(self, opts: Mapping[str, Any] | None = None) -> int:  # noqa: N802
        """Node's ``retryJobs({count, state, timestamp})``; how many jobs moved."""
        return self.retry_jobs(**node_args.parse("Queue.retryJobs", opts))

    def promoteJobs(self, opts: Mapping[str, Any] | None = None) -> int:  # noqa: N802
        """Node's ``promoteJobs({count})``; how many jobs moved."""
        return self.promote_jobs(**node_args.parse("Queue.promoteJobs", opts))

    def remove(
        self,
        job_id: str | int,
        opts: Mapping[str, Any] | bool | None = None,
        *,
        remove_children: bool | None = None,
    ) -> int:
        """Delete a job by id (and its children unless ``removeChildren`` is false): 1 when
        removed, 0 when it (or a child) is locked by a worker. Node's ``Queue.remove``."""
        parsed = node_args.flag_or_options("Queue.remove", opts, "remove_children")
        if remove_children is not None:
            parsed["remove_children"] = node_args.boolean("remove_children", remove_children)
        removed = job_ops.remove(
            self, validate_job_id(job_id), parsed.get("remove_children", True)
        )
        return 1 if removed else 0

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

    def obliterate(
        self,
        opts: Mapping[str, Any] | bool | None = None,
        *,
        force: bool | None = None,
        count: int | None = None,
    ) -> None:
        """Pause the queue, then delete it and every job in it; with active jobs it raises
        ``QueueHasActiveJobs`` (the queue stays paused, as in BullMQ) unless ``force``.
        Takes Node's ``{"force": ..., "count": ...}`` or keywords."""
        parsed = node_args.flag_or_options("Queue.obliterate", opts, "force")
        if force is not None:
            parsed["force"] = node_args.boolean("force", force)
        if count is not None:
            parsed["count"] = node_args.whole(1)("count", count)
        management.obliterate(self, **parsed)

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
        return producer.get_deduplication_job_id(self, dedup_id)

    def remove_deduplication_key(self, dedup_id: str) -> int:
        """Forget a deduplication id so the next add with it is stored; 1 if a key went."""
        return producer.remove_deduplication_key(self, dedup_id)

    getDeduplicationJobId = get_deduplication_job_id
    removeDeduplicationKey = remove_deduplication_key
    get_debounce_job_id = getDebounceJobId = get_deduplication_job_id  # BullMQ's older names
    remove_debounce_key = removeDebounceKey = remove_deduplication_key

    # -- manual rate limit and worker metrics (worker_steps.py) ---------------------------

    def rate_limit(self, expire_ms: int) -> None:
        """Rate-limit this queue for ``expire_ms`` ms (BullMQ's ``Queue.rateLimit``)."""
        worker_steps.rate_limit(self, expire_ms)

    def get_rate_limit_ttl(self, max_jobs: int | None = None) -> int:
        """Ms this queue stays rate limited: 0 when not limited (BullMQ's getRateLimitTtl)."""
        return worker_steps.rate_limit_ttl(self, max_jobs)

    def get_metrics(self, type: str, start: int = 0, end: int = -1) -> dict[str, Any]:
        """Per-minute ``completed``/``failed`` counts collected by workers with ``metrics``."""
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
        job_id = schedulers.upsert(
            self, scheduler_id, repeat, template, self.default_job_options
        )
        return None if job_id is None else Job.from_id(self, job_id)

    def get_job_scheduler(self, scheduler_id: str) -> dict[str, Any] | None:
        """A job scheduler as BullMQ's getJobScheduler describes it, or None."""
        return schedulers.get(self, scheduler_id)

    def get_job_schedulers(
        self, start: int = 0, end: int = -1, asc: bool = False
    ) -> list[dict[str, Any]]:
        """Job schedulers by next run time (latest first unless ``asc``)."""
        return schedulers.get_many(self, start, end, asc)

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Delete a job scheduler and its pending iteration; True when it existed."""
        return schedulers.remove(self, scheduler_id)

    def get_job_schedulers_count(self) -> int:
        """The number of job schedulers."""
        return schedulers.count(self)

    upsertJobScheduler = upsert_job_scheduler
    getJobScheduler = get_job_scheduler
    getJobSchedulers = get_job_schedulers
    removeJobScheduler = remove_job_scheduler
    getJobSchedulersCount = get_job_schedulers_count
    # -- end of job schedulers ----------------------------------------------------------------

    # -- Node-shaped extras: thin mappings of BullMQ Queue members (node_args) -------------

    @property
    def defaultJobOptions(self) -> dict[str, Any]:  # noqa: N802
        """A copy of the default job options (Node's ``queue.defaultJobOptions``)."""
        return dict(self.default_job_options)

    qualifiedName = qualified_name

    def add_job_log(self, job_id: str | int, log_row: str, keep_logs: int | None = None) -> int:
        """Append a log row to a job by id; how many rows it keeps (Node's addJobLog)."""
        return job_ops.add_log(self, validate_job_id(job_id), log_row, keep_logs)

    def update_job_progress(self, job_id: str | int, progress: Any) -> None:
        """Store a job's progress by id and emit ``progress`` (Node's updateJobProgress)."""
        job_ops.update_progress(self, validate_job_id(job_id), progress)

    def get_global_rate_limit(self) -> dict[str, int] | None:
        """``{"max", "duration"}`` of the global rate limit, or None (Node's getter)."""
        return management.get_global_rate_limit(self)

    def remove_rate_limit_key(self) -> int:
        """Delete the rate limiter key (lifts a current rate limit); 1 if it existed."""
        return worker_steps.remove_rate_limit_key(self)

    def get_version(self) -> str | None:
        """The meta ``version`` field a Node BullMQ Queue writes, or None (we write none)."""
        return management.get_version(self)

    def get_meta(self) -> dict[str, Any]:
        """The queue meta as BullMQ's ``getMeta`` returns it (``paused`` a bool)."""
        return management.get_meta(self)

    addJobLog = add_job_log
    getMeta = get_meta
    updateJobProgress = update_job_progress
    getGlobalRateLimit = get_global_rate_limit
    removeRateLimitKey = remove_rate_limit_key
    getVersion = get_version
    # -- end of Node-shaped extras ----------------------------------------------------------

    # -- display ----------------------------------------------------

    def _repr_html_(self) -> str:
        """Jupyter's view: name, connection (password redacted), paused, counts per state."""
        try:
            with self.connection.short_budget():
                counts: dict[str, int] | None = self.get_job_counts()
                paused: bool | None = self.is_paused()
            error = None
        except BullMQSyncError as exc:
            counts, paused, error = None, None, str(exc)
        return display.queue_html(self, counts, paused, error)

    # -- counts, workers, events trimming and metrics export (getters, workers_list, -----
    # -- prometheus; BullMQ's queue-getters) ------------------------------------------------

    def get_waiting_count(self) -> int:
        """Jobs waiting (BullMQ's getWaitingCount)."""
        return getters.get_job_count_by_types(self, "waiting")

    def get_active_count(self) -> int:
        """Jobs being processed now."""
        return getters.get_job_count_by_types(self, "active")

    def get_delayed_count(self, timestamp: int | None = None) -> int:
        """Delayed jobs; with ``timestamp`` (ms) only those due strictly before it."""
        return getters.get_delayed_count(self, timestamp)

    def get_completed_count(self) -> int:
        """Completed jobs kept in the completed set."""
        return getters.get_job_count_by_types(self, "completed")

    def get_failed_count(self) -> int:
        """Failed jobs kept in the failed set."""
        return getters.get_job_count_by_types(self, "failed")

    def get_prioritized_count(self) -> int:
        """Jobs waiting with a priority."""
        return getters.get_job_count_by_types(self, "prioritized")

    def get_waiting_children_count(self) -> int:
        """Parents waiting for their children."""
        return getters.get_job_count_by_types(self, "waiting-children")

    def get_counts_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """``{priority: count}`` of waiting jobs per priority (0 = no priority), atomically."""
        return getters.get_counts_per_priority(self, priorities)

    def _get_counts_per_priority_node(self, priorities: Iterable[int]) -> dict[str, int]:
        """BullMQ's getCountsPerPriority: the same counts keyed by ``str(priority)``."""
        return {str(k): v for k, v in getters.get_counts_per_priority(self, priorities).items()}

    def trim_events(self, max_length: int) -> int:
        """Trim the event stream to about ``max_length`` entries; how many entries went."""
        return getters.trim_events(self, max_length)

    def get_workers(self) -> list[dict[str, str]]:
        """Workers (Python or Node) serving this queue, from CLIENT LIST (BullMQ's getWorkers)."""
        return workers_list.get_workers(self)

    def get_workers_count(self) -> int:
        """How many worker connections serve this queue."""
        return len(self.get_workers())

    def get_queue_events(self) -> list[dict[str, str]]:
        """QueueEvents connections reading this queue (BullMQ's deprecated getQueueEvents)."""
        return workers_list.get_queue_events(self)

    def export_prometheus_metrics(self, global_variables: Mapping[str, Any] | None = None) -> str:
        """Counts per state and completed/failed totals in Prometheus' text format (as Node's).

        ``global_variables`` become extra labels on every line: ``{"env": "prod"}``.
        """
        return prometheus.export(self, global_variables)

    getWaitingCount = get_waiting_count
    getActiveCount = get_active_count
    getDelayedCount = get_delayed_count
    getCompletedCount = get_completed_count
    getFailedCount = get_failed_count
    getPrioritizedCount = get_prioritized_count
    getWaitingChildrenCount = get_waiting_children_count
    getCountsPerPriority = _get_counts_per_priority_node
    trimEvents = trim_events
    getWorkers = get_workers
    getWorkersCount = get_workers_count
    getQueueEvents = get_queue_events
    exportPrometheusMetrics = export_prometheus_metrics
    # -- end of counts, workers, events trimming and metrics export ------------------------
