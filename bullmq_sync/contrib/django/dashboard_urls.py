"""``path("queues/", include("bullmq_sync.contrib.django.dashboard_urls"))``: the dashboard
(staff-only by default; see ``dashboard_views`` for its settings)."""

from __future__ import annotations

from django.urls import path  # type: ignore[import-untyped]

from .dashboard_views import dashboard

app_name = "bullmq_dashboard"
urlpatterns = [
    path("", dashboard, name="index"),
    path("<path:rest>", dashboard, name="page"),
]
