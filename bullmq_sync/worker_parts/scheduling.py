"""Batch scheduling (Linux ``SCHED_BATCH``) for a worker's job threads.

A worker's slot threads and the reader of its finishing socket hand work to each other
several times per job, and all need the interpreter lock. Under the default policy a thread
that is woken preempts the running one at once, only to find the lock held and sleep again:
with short jobs the worker spends more CPU on these switches than on the jobs. Under
``SCHED_BATCH`` ("throughput work") a wake-up does not preempt: the woken thread runs when
the running one blocks. Time slices and priorities are otherwise those of the default policy.

The slot threads switch when they start (the processor runs under it too, and threads and
processes it starts inherit it, as with any thread policy); the reader is started by a slot
thread and inherits it. The child processes of ``processes=N`` are started under the
default policy, also those a slot thread starts to replace one
(``default_policy_for_children``). The caller's threads, lock renewal and stall checks keep
their policy, so renewals still run promptly. Threads that already have another policy
(real-time, idle) are left alone. Nothing needs privileges; a no-op where Linux's policies
do not exist or a sandbox refuses them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_BATCH = getattr(os, "SCHED_BATCH", None)
_OTHER = getattr(os, "SCHED_OTHER", None)


def use_batch_scheduling() -> bool:
    """Put the calling thread under ``SCHED_BATCH`` if it is under the default policy.

    True when it did; never raises.
    """
    if _BATCH is None or _OTHER is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        if os.sched_getscheduler(0) != _OTHER:
            return False
        os.sched_setscheduler(0, _BATCH, os.sched_param(0))
    except OSError:
        return False
    return True


@contextmanager
def default_policy_for_children() -> Iterator[None]:
    """Processes started inside get the default policy: a batch thread leaves it meanwhile
    (a policy change costs a reschedule, so this is for rare events such as starting a
    child process)."""
    switched = False
    if _BATCH is not None and _OTHER is not None and hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) == _BATCH:
                os.sched_setscheduler(0, _OTHER, os.sched_param(0))
                switched = True
        except OSError:
            pass
    try:
        yield
    finally:
        if switched:
            use_batch_scheduling()
