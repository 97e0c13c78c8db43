"""Worker options: BullMQ 6.7's ``WorkerOptions`` keys mapped to keyword settings, checked once.

Every key Node's ``WorkerOptions`` declares is either mapped to a keyword of ``Worker`` or
refused with the reason; any other key raises ``InvalidArgument`` naming it and the accepted
ones. Nothing is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..attempt_calls import Settings, limiter_args
from ..backoff import BackoffStrategy
from ..errors import InvalidArgument
from ..options import keep_policy as keep_policy
from ..worker_steps import max_data_points

OPTION_NAMES = {
    "connection": "connection",
    "prefix": "prefix",
    "name": "name",
    "autorun": "autorun",
    "concurrency": "concurrency",
    "limiter": "limiter",
    "metrics": "metrics",
    "maximumRateLimitDelay": "maximum_rate_limit_delay",
    "maxStartedAttempts": "max_started_attempts",
    "maxStalledCount": "max_stalled_count",
    "stalledInterval": "stalled_interval",
    "removeOnComplete": "remove_on_complete",
    "removeOnFail": "remove_on_fail",
    "skipStalledCheck": "skip_stalled_check",
    "skipLockRenewal": "skip_lock_renewal",
    "drainDelay": "drain_delay",
    "lockDuration": "lock_duration",
    "lockRenewTime": "lock_renew_time",
    "runRetryDelay": "run_retry_delay",
}
"""Node option -> keyword of ``Worker`` (the snake_case spelling is accepted in the dict too)."""

ACCEPTED_AS_IS = {
    "blockingConnection": (True,),
    "skipVersionCheck": (True, False),
    "skipWaitingForReady": (True, False),
    "useWorkerThreads": (False,),
}
"""Keys whose only meaning here is already how the worker behaves: it always blocks on its
own connection, runs no version check and connects lazily; threads are what run processors
anyway. Any other value is refused."""

REFUSED = {
    "useWorkerThreads": "processors already run in threads; use processes=N for CPU-bound work",
    "workerForkOptions": "child processes are Python processes: use processes=N",
    "workerThreadsOptions": "Node worker_threads options have no Python equivalent",
    "telemetry": "OpenTelemetry is not wired into the worker",
    "blockingConnection": "a worker always waits for jobs on a blocking connection",
}

SETTINGS_KEYS = {"backoffStrategy": "backoff_strategy"}
SETTINGS_REFUSED = {
    "repeatStrategy": "custom repeat strategies are not supported (cron and every are)",
    "repeatKeyHashAlgorithm": "repeat keys are hashed as BullMQ's default (md5)",
}


@dataclass
class WorkerSettings:
    """Checked settings of one worker (durations in ms, but ``drain_delay`` in seconds)."""

    connection: Any = None
    prefix: str = "bull"
    name: str | None = None
    autorun: bool = True
    concurrency: int = 1
    limiter: Mapping[str, int] | None = None
    metrics: Mapping[str, int] | None = None
    maximum_rate_limit_delay: int = 30000
    max_started_attempts: int | None = None
    max_stalled_count: int = 1
    stalled_interval: int = 30000
    remove_on_complete: Any = None
    remove_on_fail: Any = None
    skip_stalled_check: bool = False
    skip_lock_renewal: bool = False
    drain_delay: float = 5
    lock_duration: int = 30000
    lock_renew_time: int | None = None
    run_retry_delay: int = 1000
    backoff_strategy: BackoffStrategy | None = None
    processes: int | None = None
    max_jobs_per_child: int | None = None
    child_initializer: str | None = None
    batch_scheduling: bool = True

    @property
    def renew_every_ms(self) -> int:
        """How often locks are renewed: ``lock_renew_time``, else half the lock duration."""
        return self.lock_renew_time or self.lock_duration // 2 or 1


def _accepted() -> str:
    return ", ".join(sorted(set(OPTION_NAMES) | {"settings"} | set(ACCEPTED_AS_IS)))


def _apply_settings_dict(value: Any, values: dict[str, Any]) -> None:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"settings must be a dict like {{'backoffStrategy': fn}}: {value!r}")
    for key, item in value.items():
        if key in SETTINGS_REFUSED:
            raise InvalidArgument(
                f"Worker settings.{key} is not supported: {SETTINGS_REFUSED[key]}"
            )
        if key not in SETTINGS_KEYS:
            raise InvalidArgument(
                f"unsupported Worker settings key {key!r}; accepted: backoffStrategy"
            )
        values[SETTINGS_KEYS[key]] = item


def read_settings(opts: Mapping[str, Any] | None, keywords: dict[str, Any]) -> WorkerSettings:
    """Merge keyword settings with a BullMQ options dict (the dict wins) and check them."""
    values = dict(keywords)
    if opts is not None and not isinstance(opts, Mapping):
        raise InvalidArgument(f"Worker options must be a dict, got {type(opts).__name__}")
    snake_names = set(OPTION_NAMES.values())
    for key, value in (opts or {}).items():
        if key == "settings":
            _apply_settings_dict(value, values)
        elif key in OPTION_NAMES or key in snake_names:
            values[OPTION_NAMES.get(key, key)] = value
        elif key in ACCEPTED_AS_IS and value in ACCEPTED_AS_IS[key] and type(value) is bool:
            continue
        elif key in REFUSED:
            raise InvalidArgument(f"Worker option {key}={value!r} is not supported: {REFUSED[key]}")
        else:
            raise InvalidArgument(f"unsupported Worker option {key!r}; accepted: {_accepted()}")
    settings = WorkerSettings(**values)
    check(settings)
    return settings


def _integer(name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be True or False, got {value!r}")


def check(s: WorkerSettings) -> None:
    """Refuse a setting BullMQ would refuse, or that would make the worker misbehave."""
    _integer("concurrency", s.concurrency, 1)
    _integer("lock_duration", s.lock_duration, 1)
    _integer("stalled_interval", s.stalled_interval, 1)
    _integer("max_stalled_count", s.max_stalled_count, 0)
    _integer("max_started_attempts", s.max_started_attempts, 0, optional=True)
    _integer("maximum_rate_limit_delay", s.maximum_rate_limit_delay, 1)
    _integer("run_retry_delay", s.run_retry_delay, 0)
    _integer("processes", s.processes, 1, optional=True)
    _integer("max_jobs_per_child", s.max_jobs_per_child, 1, optional=True)
    if s.lock_renew_time is not None:
        _integer("lock_renew_time", s.lock_renew_time, 1)
    for name in ("autorun", "skip_stalled_check", "skip_lock_renewal", "batch_scheduling"):
        _flag(name, getattr(s, name))
    if not isinstance(s.prefix, str) or not s.prefix:
        raise InvalidArgument(f"prefix must be a non-empty string, got {s.prefix!r}")
    if s.name is not None and not isinstance(s.name, str):
        raise InvalidArgument(f"name must be a string, got {s.name!r}")
    drain = s.drain_delay
    if isinstance(drain, bool) or not isinstance(drain, (int, float)) or drain <= 0:
        raise InvalidArgument(f"drain_delay must be a positive number of seconds: {drain!r}")
    limiter = s.limiter
    if limiter is not None:
        if not isinstance(limiter, Mapping) or "max" not in limiter:
            raise InvalidArgument("limiter must be a dict like {'max': 10, 'duration': 1000}")
        unknown = set(limiter) - {"max", "duration"}
        if unknown:
            raise InvalidArgument(
                f"unsupported limiter key(s) {sorted(unknown)}; accepted: max, duration"
            )
    if s.backoff_strategy is not None and not callable(s.backoff_strategy):
        raise InvalidArgument("backoff_strategy must be callable")
    if s.max_jobs_per_child is not None and s.processes is None:
        raise InvalidArgument("max_jobs_per_child needs processes=N")
    if s.child_initializer is not None and (
        s.processes is None or not isinstance(s.child_initializer, str)
    ):
        raise InvalidArgument("child_initializer is a 'module:function' path, with processes=N")
    if s.processes is not None and s.concurrency not in (1, s.processes):
        raise InvalidArgument(
            "with processes=N each process runs one job at a time: give processes, not "
            f"concurrency (got concurrency={s.concurrency}, processes={s.processes})"
        )
    keep_policy(s.remove_on_complete)
    keep_policy(s.remove_on_fail)


def attempt_settings(s: WorkerSettings) -> Settings:
    """What the attempt scripts read of a worker (fetch, finish, retry, delay; also for the
    jobs it hands out by hand)."""
    limit_max, limit_window = limiter_args(s.limiter)
    return Settings(
        lock_ms=s.lock_duration,
        limit_max=limit_max,
        limit_window=limit_window,
        name=s.name or "",
        remove_on_complete=s.remove_on_complete,
        remove_on_fail=s.remove_on_fail,
        max_metrics=max_data_points(s.metrics),
        backoff_strategy=s.backoff_strategy,
        max_started_attempts=s.max_started_attempts,
    )
