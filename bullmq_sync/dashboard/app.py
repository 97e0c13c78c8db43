"""The dashboard as one WSGI application (``Dashboard``): pages, actions, live events.

Mounted by the Flask extension, by Django's ``dashboard_urls``, or served alone by
``bullmq-sync dashboard``. Reads are bounded (see ``data``); actions are the library's own
calls (see ``actions``); every job field is rendered by Jinja with autoescaping, and the
pages load only this package's script and stylesheet (a strict Content-Security-Policy).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from .. import log
from ..connection import Connection
from ..errors import BullMQSyncError, InvalidArgument
from ..queue import Queue
from . import actions, data, live
from .csrf import CSRFPolicy, SignedToken
from .http import HTTPError, Request, Response, StartResponse, redirect

PER_PAGE_CHOICES = (20, 50, 100, 200)
CONFIRMED_ACTIONS = frozenset(
    {"retry-all", "retry-all-completed", "promote-all", "clean", "remove"}
)
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_NOTICES = {
    "retry": "Job retried.",
    "retry-selected": "Selected jobs retried: {n}.",
    "retry-all": "Failed jobs retried: {n}.",
    "retry-all-completed": "Completed jobs retried: {n}.",
    "promote": "Job promoted.",
    "promote-all": "Delayed jobs promoted: {n}.",
    "remove": "Job removed.",
    "priority": "Priority changed.",
    "pause": "Queue paused.",
    "resume": "Queue resumed.",
    "clean": "Jobs cleaned: {n}.",
}

QueueFilter = Callable[[str], bool]


def _visibility(queues: Iterable[str] | QueueFilter | None) -> QueueFilter:
    if queues is None:
        return lambda name: True
    if callable(queues):
        return queues
    if isinstance(queues, str):
        raise InvalidArgument("queues must be a list of names or patterns, not one string")
    patterns = list(queues)
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


class Dashboard:
    """``Dashboard(connection, prefix="bull")``: a WSGI app showing and managing the queues.

    ``read_only`` hides and refuses every action. ``queues`` limits what is visible: a list
    of names or ``fnmatch`` patterns, or a callable ``name -> bool``. ``csrf`` defaults to a
    signed double-submit token (``secret`` keeps tokens valid across processes). Each open
    page holds one live-update stream (a server thread) for up to ``sse_lifetime`` seconds;
    past ``max_streams`` at once, new pages are told to try again later instead.
    """

    def __init__(
        self,
        connection: Connection | str,
        prefix: str = "bull",
        *,
        read_only: bool = False,
        queues: Iterable[str] | QueueFilter | None = None,
        csrf: CSRFPolicy | None = None,
        secret: bytes | str | None = None,
        title: str = "BullMQ queues",
        discovery_ttl: float = 10.0,
        live_updates: bool = True,
        sse_lifetime: float = 60.0,
        max_streams: int = 8,
    ) -> None:
        self._owns_connection = not isinstance(connection, Connection)
        self.connection = Connection.coerce(connection)
        self.prefix = prefix
        self.read_only = read_only
        self.visible = _visibility(queues)
        self.csrf = csrf or SignedToken(secret)
        self.title = title
        self.live_updates = live_updates
        self.sse_lifetime = sse_lifetime
        self._streams = threading.BoundedSemaphore(max_streams)
        self.directory = data.QueueDirectory(self.connection, prefix, discovery_ttl)
        self._queues: dict[str, Queue] = {}
        self._lock = threading.Lock()
        from .render import environment

        self.env = environment()

    def __repr__(self) -> str:
        return f"<Dashboard prefix={self.prefix!r} on {self.connection!r}>"

    def close(self) -> None:
        """Close the connection if the dashboard opened it (from a URL). Idempotent."""
        if self._owns_connection:
            self.connection.close()

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            with self.connection.short_budget():  # a page says soon that Redis is down
                response = self.dispatch(request)
        except HTTPError as exc:
            response = self.message(request, exc.status, exc.message)
        except BullMQSyncError as exc:  # Redis unreachable, timed out, ...: say so, not a 500
            log.event("dashboard.redis_error", error=type(exc).__name__, path=request.path)
            response = self.message(request, 503, f"Redis is not answering ({type(exc).__name__}).")
        cookie = self.csrf.cookie(request)
        if cookie is not None:
            response.headers.append(("Set-Cookie", cookie))
        return response(start_response)

    def dispatch(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path.startswith("/static/"):
            return self.static(path[len("/static/") :])
        routes: dict[str, Callable[[Request], Response]] = {
            "/": self.overview_page,
            "/queue": self.queue_page,
            "/find": self.find,
            "/job": self.job_page,
            "/confirm": self.confirm_page,
            "/events": self.events,
            "/action": self.action,
        }
        handler = routes.get(path.rstrip("/") or "/")
        if handler is None:
            raise HTTPError(404, "Not found.")
        expected = "POST" if handler == self.action else "GET"
        if method != expected and not (method == "HEAD" and expected == "GET"):
            return Response(b"method not allowed", 405, "text/plain", [("Allow", expected)])
        return handler(request)

    # -- helpers ---------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        """The visible queue called ``name`` (404 for a hidden or invalid name)."""
        if not name or not self.visible(name):
            raise HTTPError(404, "No such queue.")
        with self._lock:
            found = self._queues.get(name)
        if found is None:
            try:
                found = Queue(name, connection=self.connection, prefix=self.prefix)
            except InvalidArgument:
                raise HTTPError(404, "No such queue.") from None
            with self._lock:
                if len(self._queues) > 10_000:
                    self._queues.clear()
                found = self._queues.setdefault(name, found)
        return found

    def visible_queues(self) -> list[Queue]:
        names = [n for n in self.directory.names() if self.visible(n)]
        out = []
        for name in names:
            try:
                out.append(self.queue(name))
            except HTTPError:
                continue
        return out

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        field = None if self.read_only else self.csrf.field(request)

        def url(path: str, **params: Any) -> str:
            query = urlencode([(k, v) for k, v in params.items() if v not in (None, "")])
            return request.url(path) + (f"?{query}" if query else "")

        html = self.env.get_template(template).render(
            url=url,
            csrf=field,
            read_only=self.read_only,
            title=self.title,
            prefix=self.prefix,
            states=data.STATES,
            now_ms=int(time.time() * 1000),
            **context,
        )
        return Response(html.encode("utf-8"), status)

    def message(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "message.html", status, message=message, code=status)

    @staticmethod
    def _int(value: str, default: int, low: int, high: int) -> int:
        try:
            number = int(value)
        except ValueError:
            return default
        return min(max(number, low), high)

    def state_of(self, queue: Queue, job_id: str) -> str:
        try:
            return str(queue.get_job_state(job_id))
        except InvalidArgument:
            return "unknown"

    # -- pages -----------------------------------------------------------------------------

    def overview_page(self, request: Request) -> Response:
        if request.query.get("refresh"):
            self.directory.names(refresh=True)
        queues = self.visible_queues()
        summaries = data.overview(self.connection, queues, self.prefix)
        return self.render(
            request,
            "overview.html",
            summaries=summaries,
            events_url=request.url("/events") if self.live_updates else "",
        )

    def queue_page(self, request: Request) -> Response:
        queue = self.queue(request.query.get("name", ""))
        state = request.query.get("state", "failed")
        if state not in data.STATES:
            raise HTTPError(404, "No such state.")
        per_page = self._int(request.query.get("per", "50"), 50, 1, max(PER_PAGE_CHOICES))
        number = self._int(request.query.get("page", "1"), 1, 1, 10**9)
        page = data.page(queue, state, number, per_page)
        done = request.query.get("done", "")
        notice = _NOTICES.get(done, "").format(
            n=self._int(request.query.get("n", "0"), 0, 0, 10**12)
        )
        return self.render(
            request,
            "queue.html",
            queue=queue.name,
            page=page,
            notice=notice,
            per_page_choices=PER_PAGE_CHOICES,
            events_url=(
                request.url("/events") + "?" + urlencode({"queue": queue.name})
                if self.live_updates
                else ""
            ),
        )

    def find(self, request: Request) -> Response:
        queue = self.queue(request.query.get("queue", ""))
        job_id = request.query.get("id", "").strip()
        if job_id:
            try:
                exists = queue.get_job(job_id) is not None
            except InvalidArgument:
                exists = False
            if exists:
                return redirect(
                    request.url("/job") + "?" + urlencode({"queue": queue.name, "id": job_id})
                )
        raise HTTPError(404, "No job with that id in this queue.")

    def job_page(self, request: Request) -> Response:
        queue = self.queue(request.query.get("queue", ""))
        job_id = request.query.get("id", "")
        try:
            job = queue.get_job(job_id) if job_id else None
        except InvalidArgument:
            job = None
        if job is None:
            raise HTTPError(404, "No job with that id in this queue.")
        state = self.state_of(queue, job.id)
        logs, log_total = queue.get_job_logs(job.id, 0, data.MAX_LOG_ROWS - 1, asc=False)
        parent = data.parse_job_key(job.parent_key, self.prefix) if job.parent_key else None
        kids = data.children(queue, job.id)
        tree = data.flow_tree(self.connection, self.prefix, queue.name, job.id, self.state_of)
        done = request.query.get("done", "")
        return self.render(
            request,
            "job.html",
            queue=queue.name,
            job=job,
            state=state,
            logs=logs,
            log_total=log_total,
            parent=parent,
            children=kids,
            child_link=lambda key: data.parse_job_key(key, self.prefix),
            tree=tree,
            pretty=data.pretty,
            notice=_NOTICES.get(done, "").format(n=1),
            events_url=(
                request.url("/events") + "?" + urlencode({"queue": queue.name, "job": job.id})
                if self.live_updates
                else ""
            ),
        )

    def confirm_page(self, request: Request) -> Response:
        if self.read_only:
            raise HTTPError(403, "This dashboard is read-only.")
        queue = self.queue(request.query.get("queue", ""))
        action = request.query.get("action", "")
        if action not in CONFIRMED_ACTIONS:
            raise HTTPError(404, "No such action.")
        counts, _ = data.read_counts(queue.connection.pipeline(data.count_commands(queue)))
        state = {
            "retry-all": "failed",
            "retry-all-completed": "completed",
            "promote-all": "delayed",
        }.get(action, request.query.get("state", ""))
        return self.render(
            request,
            "confirm.html",
            queue=queue.name,
            action=action,
            state=state,
            total=counts.get(state, 0),
            job_id=request.query.get("id", ""),
        )

    def static(self, name: str) -> Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
            raise HTTPError(404, "Not found.")
        try:
            body = resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise HTTPError(404, "Not found.") from None
        response = Response(body, 200, _STATIC_TYPES[suffix])
        return response

    # -- live updates ----------------------------------------------------------------------

    def events(self, request: Request) -> Response:
        if not self.live_updates:
            raise HTTPError(404, "Live updates are off.")
        name = request.query.get("queue")
        queues = [self.queue(name)] if name else self.visible_queues()[:200]
        job_id = request.query.get("job") or None
        if not self._streams.acquire(blocking=False):
            busy = f"retry: {live.BUSY_RETRY_MS}\n\n".encode("ascii")
            return Response(busy, 200, "text/event-stream; charset=utf-8")

        parts = live.stream(self.connection, queues, job_id, self.state_of, self.sse_lifetime)
        return Response(
            _Slot((p.encode("utf-8") for p in parts), self._streams.release),
            200,
            "text/event-stream; charset=utf-8",
            [("X-Accel-Buffering", "no")],
        )

    # -- actions ---------------------------------------------------------------------------

    def action(self, request: Request) -> Response:
        if self.read_only:
            log.event("dashboard.action_refused", queue=request.form("queue"), reason="read-only")
            raise HTTPError(403, "This dashboard is read-only: actions are disabled.")
        if not self.csrf.check(request):
            log.event("dashboard.action_refused", queue=request.form("queue"), reason="csrf")
            raise HTTPError(
                403, "The form expired or did not come from this dashboard: reload the page."
            )
        queue = self.queue(request.form("queue"))
        name = request.form("action")
        if name in CONFIRMED_ACTIONS and request.form("confirm") != "yes":
            raise HTTPError(400, "This action needs confirmation.")
        state = request.form("state") or "failed"
        back_state = state if state in data.STATES else "failed"
        if name in actions.BULK_ACTIONS:
            log.event("dashboard.action", queue=queue.name, action=name)
            if request.wants_stream:
                total = self._int(request.form("total"), 0, 0, 10**12)
                return Response(
                    (line.encode("utf-8") for line in actions.stream_bulk(queue, name, total)),
                    200,
                    "application/x-ndjson",
                )
            outcome = actions.run_bulk(queue, name)
            return self._back(request, queue.name, actions.BULK_ACTIONS[name], outcome)
        try:
            outcome = actions.run_single(
                queue, name, request.form, request.form_lists.get("ids", [])
            )
        except BullMQSyncError as exc:
            raise HTTPError(409, f"{type(exc).__name__}: {exc}") from None
        log.event("dashboard.action", queue=queue.name, action=name, count=outcome.count)
        job_id = request.form("id")
        if name in ("retry", "promote", "priority") and job_id:
            return redirect(
                request.url("/job")
                + "?"
                + urlencode({"queue": queue.name, "id": job_id, "done": name})
            )
        return self._back(request, queue.name, back_state, outcome)

    def _back(self, request: Request, queue: str, state: str, outcome: actions.Outcome) -> Response:
        query = urlencode(
            {"name": queue, "state": state, "done": outcome.action, "n": outcome.count}
        )
        return redirect(request.url("/queue") + "?" + query)


def json_attr(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


class _Slot:
    """A response body that gives its stream slot back when the server closes it (also when
    the browser left before the first byte)."""

    def __init__(self, parts: Iterator[bytes], release: Callable[[], None]) -> None:
        self._parts = parts
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self._parts

    def close(self) -> None:
        release, self._release = self._release, None
        close = getattr(self._parts, "close", None)
        if close is not None:
            close()
        if release is not None:
            release()
