"""Synchronous helpers driving the official async Python port of BullMQ.

The port is the PyPI ``bullmq`` package (asyncio based).  Every helper runs
one operation in a fresh event loop (``asyncio.run``) and always closes the
Queue / Worker it created, so tests can call them from plain synchronous code
(not from inside a running event loop).

The data-driven processor used by :func:`process` follows the same
conventions as the Node driver (see ``nodebullmq.PROCESSOR_CONVENTIONS``).

Notes on bullmq (PyPI) 3.4.4, found while writing these helpers:

* connection options: ``{"connection": <redis URL | redis-py kwargs | client>,
  "prefix": ...}``; the Queue/Worker open their own ``redis.asyncio`` clients
  with ``decode_responses=True``.
* ``Worker(name, processor, opts)`` must be created inside a running loop
  (autorun schedules ``run()`` with ``asyncio.ensure_future``); the processor
  is ``async def processor(job, token)`` (a third positional parameter opts
  into an AbortSignal).  Events: ``"completed"(job, result)`` and
  ``"failed"(job, err)``, the latter for every failed attempt, including ones
  that will be retried.
* ``failedReason`` is written raw (``str(err)``), not JSON-encoded, both
  through ``moveToFinished`` and the ``fieldsToUpdate`` of retryJob /
  moveToDelayed, the same as Node BullMQ.
* ``Job.retry(state, opts)`` runs the ``reprocessJob`` script and returns
  None (opts: ``resetAttemptsMade`` / ``resetAttemptsStarted``).
* Script errors are raised as ``TypeError`` (``UnrecoverableError`` for
  failed children) with the same messages as Node; the numeric code is not
  attached to the exception.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import bullmq
from bullmq import Queue, UnrecoverableError, Worker

#: Attributes of bullmq.Job reported by :func:`get_job`.
JOB_ATTRIBUTES = (
    "id",
    "name",
    "data",
    "opts",
    "progress",
    "timestamp",
    "delay",
    "priority",
    "attempts",
    "attemptsMade",
    "attemptsStarted",
    "stalledCounter",
    "processedOn",
    "finishedOn",
    "returnvalue",
    "failedReason",
    "stacktrace",
    "parentKey",
    "parent",
    "repeatJobKey",
    "deferredFailure",
)

PORT_VERSION = getattr(bullmq, "__version__", None)


class ProcessorError(Exception):
    """Raised by the data-driven processor for ``__fail`` / ``__failTimes``."""


def _opts(
    redis_url: str, prefix: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    opts: dict[str, Any] = dict(extra or {})
    opts["connection"] = redis_url
    opts["prefix"] = prefix
    return opts


def _run(coro):
    return asyncio.run(coro)


async def _with_queue(redis_url: str, queue: str, prefix: str, fn):
    q = Queue(queue, _opts(redis_url, prefix))
    try:
        return await fn(q)
    finally:
        await q.close()


def _job_dict(job) -> dict[str, Any]:
    return {attr: getattr(job, attr, None) for attr in JOB_ATTRIBUTES}


# ----------------------------------------------------------------------
# producer-side helpers
# ----------------------------------------------------------------------


def add(
    redis_url: str,
    queue: str,
    name: str,
    data: Any,
    opts: dict[str, Any] | None = None,
    prefix: str = "bull",
) -> str:
    """Add one job with the port; returns its id."""

    async def op(q):
        job = await q.add(name, data, dict(opts or {}))
        return job.id

    return _run(_with_queue(redis_url, queue, prefix, op))


def add_bulk(
    redis_url: str, queue: str, jobs: list[dict[str, Any]], prefix: str = "bull"
) -> list[str]:
    """Add jobs given as ``[{"name", "data", "opts"}]``; returns their ids."""

    async def op(q):
        added = await q.addBulk(
            [
                {
                    "name": j["name"],
                    "data": j.get("data", {}),
                    "opts": dict(j.get("opts") or {}),
                }
                for j in jobs
            ]
        )
        return [job.id for job in added]

    return _run(_with_queue(redis_url, queue, prefix, op))


def get_job(
    redis_url: str, queue: str, job_id: str, prefix: str = "bull"
) -> dict[str, Any] | None:
    """The port's view of a job: its Job attributes plus ``state``, or None."""

    async def op(q):
        job = await q.getJob(str(job_id))
        if job is None:
            return None
        result = _job_dict(job)
        result["state"] = await job.getState()
        return result

    return _run(_with_queue(redis_url, queue, prefix, op))


def get_job_counts(
    redis_url: str, queue: str, *types: str, prefix: str = "bull"
) -> dict[str, int]:
    async def op(q):
        return await q.getJobCounts(*types)

    return _run(_with_queue(redis_url, queue, prefix, op))


def retry(
    redis_url: str,
    queue: str,
    job_id: str,
    state: str = "failed",
    opts: dict[str, Any] | None = None,
    prefix: str = "bull",
) -> None:
    """``Job.retry(state, opts)`` with the port.

    Raises LookupError if the job does not exist; script errors propagate as
    the port raises them (TypeError with BullMQ's message).
    """

    async def op(q):
        job = await q.getJob(str(job_id))
        if job is None:
            raise LookupError(f"job {job_id} not found in {prefix}:{queue}")
        await job.retry(state, dict(opts or {}))

    _run(_with_queue(redis_url, queue, prefix, op))


# ----------------------------------------------------------------------
# worker-side helper
# ----------------------------------------------------------------------


def _data_dict(job) -> dict[str, Any]:
    data = job.data
    return data if isinstance(data, dict) else {}


async def _is_parent(client, prefix: str, queue: str, job_id: str) -> bool:
    base = f"{prefix}:{queue}:{job_id}"
    suffixes = ("dependencies", "processed", "failed", "unsuccessful")
    return bool(await client.exists(*[f"{base}:{s}" for s in suffixes]))


def process(
    redis_url: str,
    queue: str,
    count: int = 1,
    timeout_s: float = 10.0,
    *,
    concurrency: int = 1,
    prefix: str = "bull",
    worker_opts: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run a port Worker with the data-driven processor.

    Waits until ``count`` completed+failed worker events happened (or
    ``timeout_s``), closes the worker and returns the outcomes in order:
    ``{"event": "completed", "jobId", "name", "returnvalue", "attemptsMade"}``
    or ``{"event": "failed", "jobId", "name", "failedReason", "attemptsMade"}``.
    Jobs already fetched when the count is reached are finished before the
    worker closes, so the list may hold more than ``count`` entries.
    """

    async def run() -> list[dict[str, Any]]:
        outcomes: list[dict[str, Any]] = []
        done = asyncio.Event()
        holder: dict[str, Any] = {}

        async def processor(job, token):
            data = _data_dict(job)
            if data.get("__sleepMs"):
                await asyncio.sleep(float(data["__sleepMs"]) / 1000.0)
            if "__unrecoverable" in data:
                raise UnrecoverableError(str(data["__unrecoverable"]))
            if "__fail" in data:
                raise ProcessorError(str(data["__fail"]))
            if "__failTimes" in data and job.attemptsMade < int(data["__failTimes"]):
                message = data.get("__failMessage")
                raise ProcessorError(
                    str(message)
                    if message is not None
                    else f"failing attempt {job.attemptsMade + 1}"
                )
            if "__return" in data:
                return data["__return"]
            if await _is_parent(holder["worker"].client, prefix, queue, job.id):
                return await job.getChildrenValues()
            return {"ok": True, "id": job.id}

        def check():
            if len(outcomes) >= count:
                done.set()

        def on_completed(job, result, *rest):
            outcomes.append(
                {
                    "event": "completed",
                    "jobId": getattr(job, "id", None),
                    "name": getattr(job, "name", None),
                    "returnvalue": result,
                    "attemptsMade": getattr(job, "attemptsMade", None),
                }
            )
            check()

        def on_failed(job, err, *rest):
            outcomes.append(
                {
                    "event": "failed",
                    "jobId": getattr(job, "id", None),
                    "name": getattr(job, "name", None),
                    "failedReason": str(err) if err is not None else None,
                    "attemptsMade": getattr(job, "attemptsMade", None),
                }
            )
            check()

        opts = _opts(redis_url, prefix, worker_opts)
        opts["concurrency"] = concurrency
        opts["autorun"] = False
        worker = Worker(queue, processor, opts)
        holder["worker"] = worker
        worker.on("completed", on_completed)
        worker.on("failed", on_failed)
        runner = asyncio.ensure_future(worker.run())
        check()
        timed_out = False
        try:
            await asyncio.wait_for(done.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            await worker.close(force=timed_out)
            try:
                await asyncio.wait_for(runner, 10)
            except (TimeoutError, asyncio.CancelledError):
                runner.cancel()
        return outcomes

    return _run(run())


def wait_for_state(
    redis_url: str,
    queue: str,
    job_id: str,
    states,
    timeout_s: float = 10.0,
    prefix: str = "bull",
) -> dict[str, Any]:
    """Poll the port's view of a job until its state is one of ``states``."""
    wanted = {states} if isinstance(states, str) else set(states)
    deadline = time.monotonic() + timeout_s
    while True:
        job = get_job(redis_url, queue, job_id, prefix=prefix)
        if job is not None and job["state"] in wanted:
            return job
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"job {job_id} not in {sorted(wanted)} after {timeout_s} s: {job}"
            )
        time.sleep(0.05)
