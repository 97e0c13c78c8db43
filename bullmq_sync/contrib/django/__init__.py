"""Django integration: ``INSTALLED_APPS += ["bullmq_sync.contrib.django"]``.

Settings: one dict, all keys optional::

    BULLMQ = {
        "URL": "redis://localhost:6379",   # default: $REDIS_URL, else this
        "PREFIX": "bull",                  # the default
        "MAX_CONNECTIONS": 16,             # the default: pool bound per process
        "QUEUES": ["emails"],              # optional: names checked by `manage.py check`
    }

``get_queue(name)`` returns a cached ``Queue`` on one pooled connection per process;
``enqueue_on_commit(queue, name, data, **opts)`` returns the job id at once and adds the job
when the database transaction commits. Management commands: ``bullmq_retry``,
``bullmq_stats``, ``bullmq_worker``. ``manage.py check`` validates the settings offline.
"""

from .queues import enqueue_on_commit, get_connection, get_queue, reset

__all__ = ["enqueue_on_commit", "get_connection", "get_queue", "reset"]
