"""A web dashboard for BullMQ queues: one WSGI app (``Dashboard``), server-rendered.

Needs the ``dashboard`` extra (Jinja2; waitress for ``bullmq-sync dashboard``). Mount it in
Flask (``BullMQ.init_dashboard``), in Django (``bullmq_sync.contrib.django.dashboard_urls``)
or run it alone (``bullmq-sync dashboard``).
"""

from .app import Dashboard
from .csrf import HostChecked, SignedToken

__all__ = ["Dashboard", "HostChecked", "SignedToken"]
