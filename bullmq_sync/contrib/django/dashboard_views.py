"""The dashboard as a Django view: staff-only by default, Django's CSRF and auth.

Settings (all optional), inside ``settings.BULLMQ``::

    BULLMQ = {
        "DASHBOARD": {
            "READ_ONLY": False,                  # hide and refuse every action
            "QUEUES": ["emails", "billing-*"],   # visible queues (fnmatch patterns)
            "PERMISSION": "myapp.perms.can_see_queues",  # request -> bool; default: is_staff
        },
    }
"""

# mypy: allow-subclassing-any
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings  # type: ignore[import-untyped]
from django.contrib.auth.views import redirect_to_login  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.http import (  # type: ignore[import-untyped]
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]
from django.views.decorators.csrf import csrf_protect  # type: ignore[import-untyped]

from ...dashboard import Dashboard, HostChecked
from ...dashboard.csrf import HOST_TOKEN_KEY
from .queues import get_connection, read_settings

_DASHBOARD_KEYS = frozenset({"READ_ONLY", "QUEUES", "PERMISSION"})


def _config() -> dict[str, Any]:
    raw = (getattr(settings, "BULLMQ", None) or {}).get("DASHBOARD") or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("settings.BULLMQ['DASHBOARD'] must be a dict")
    unknown = set(raw) - _DASHBOARD_KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown settings.BULLMQ['DASHBOARD'] key(s) {sorted(unknown)}; "
            f"expected {sorted(_DASHBOARD_KEYS)}"
        )
    return raw


def is_staff(request: HttpRequest) -> bool:
    """The default permission: an active staff user."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _permission() -> Callable[[HttpRequest], bool]:
    found = _config().get("PERMISSION") or is_staff
    if isinstance(found, str):
        found = import_string(found)
    if not callable(found):
        raise ImproperlyConfigured("settings.BULLMQ['DASHBOARD']['PERMISSION'] must be callable")
    return found


class _Cache:
    lock = threading.Lock()
    dashboard: Dashboard | None = None


def get_dashboard() -> Dashboard:
    """This process's ``Dashboard`` for the current settings (rebuilt when they change)."""
    with _Cache.lock:
        connection = get_connection()
        found = _Cache.dashboard
        if found is None or found.connection is not connection:
            config = _config()
            queues: Iterable[str] | None = config.get("QUEUES")
            found = Dashboard(
                connection,
                read_settings().prefix,
                read_only=bool(config.get("READ_ONLY", False)),
                queues=queues,
                csrf=HostChecked(),
            )
            _Cache.dashboard = found
        return found


def _reset(*, setting: str, **_: Any) -> None:
    if setting == "BULLMQ":
        with _Cache.lock:
            _Cache.dashboard = None


setting_changed.connect(_reset, dispatch_uid="bullmq_sync.contrib.django.dashboard_reset")


@csrf_protect  # type: ignore[untyped-decorator]
def dashboard(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Serve one dashboard request below the URL this view is included at."""
    if not _permission()(request):
        if not getattr(getattr(request, "user", None), "is_authenticated", False):
            return redirect_to_login(request.get_full_path())
        return HttpResponseForbidden("You may not see the queues.")
    environ = _environ(request, rest)
    status_headers: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status_headers[:] = [status, headers]
        return lambda data: None

    body = get_dashboard()(environ, start_response)
    status, headers = status_headers
    code = int(status.split(" ", 1)[0])
    content_type = dict(headers).get("Content-Type", "text/html")
    if content_type.startswith(("text/event-stream", "application/x-ndjson")):
        response: HttpResponse = StreamingHttpResponse(body, status=code, content_type=content_type)
    else:
        response = HttpResponse(b"".join(body), status=code, content_type=content_type)
    for name, value in headers:
        if name.lower() not in ("content-type", "content-length"):
            response[name] = value
    return response


def _environ(request: HttpRequest, rest: str) -> dict[str, Any]:
    """A WSGI environ for the dashboard: the path below this view, and the form Django
    already read (re-encoded, so CSRF checking and the dashboard see the same fields)."""
    import io

    environ = dict(getattr(request, "environ", None) or request.META)
    path = request.path
    tail = "/" + rest if rest else "/"
    base = path[: len(path) - len(tail)] if rest and path.endswith(tail) else path.rstrip("/")
    environ["SCRIPT_NAME"] = base.rstrip("/")
    environ["PATH_INFO"] = ("/" + rest).encode("utf-8").decode("latin-1")
    environ["QUERY_STRING"] = request.META.get("QUERY_STRING", "")
    environ["REQUEST_METHOD"] = request.method
    body = b""
    if request.method == "POST":
        body = urlencode(list(request.POST.lists()), doseq=True).encode("utf-8")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    environ[HOST_TOKEN_KEY] = ("csrfmiddlewaretoken", get_token(request))
    return environ
