"""Flask integration: one pooled Redis connection per app process, queues by name, CLI.

::

    from flask import Flask
    from bullmq_sync.contrib.flask import BullMQ

    bullmq = BullMQ()

    def create_app():
        app = Flask(__name__)
        app.config["BULLMQ_URL"] = "redis://localhost:6379"
        bullmq.init_app(app)
        return app

    @app.post("/signup")
    def signup():
        job = bullmq.queue("emails").add("welcome", {"to": request.form["email"]})
        return {"job": job.id}

Settings (``app.config``): ``BULLMQ_URL`` (default ``$REDIS_URL``, else ``redis://localhost:6379``),
``BULLMQ_PREFIX`` (default ``bull``), ``BULLMQ_MAX_CONNECTIONS`` (default 16: the pool's
bound, shared by every request thread of the process). ``flask bullmq retry|counts|jobs|show``
run the ``bullmq-sync`` commands against the app's settings.

The dashboard (``pip install 'bullmq-sync[dashboard]'``) mounts as a blueprint behind an
auth callable the app provides::

    bullmq.init_dashboard(app, url_prefix="/queues", auth=lambda: current_user.is_admin)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup

from ..connection import Connection, default_url
from ..errors import ConfigurationError
from ..queue import Queue

if TYPE_CHECKING:
    from flask import Blueprint

    from ..dashboard import Dashboard

EXTENSION_KEY = "bullmq"
DEFAULT_PREFIX = "bull"
DEFAULT_MAX_CONNECTIONS = 16


class BullMQState:
    """What ``init_app`` stores in ``app.extensions["bullmq"]``: settings, pool, queues."""

    def __init__(self, url: str, prefix: str, max_connections: int) -> None:
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._queues: dict[str, Queue] = {}

    def __repr__(self) -> str:
        return f"<BullMQState prefix={self.prefix!r} connection={self._connection!r}>"

    @property
    def connection(self) -> Connection:
        """The app's one pooled connection, created on first use (fork-safe)."""
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = Connection(self.url, max_connections=self.max_connections)
            return self._connection

    def queue(self, name: str) -> Queue:
        """The cached ``Queue`` called ``name`` on the app's connection."""
        with self._lock:
            found = self._queues.get(name)
        if found is not None:
            return found
        created = Queue(name, connection=self.connection, prefix=self.prefix)
        with self._lock:
            return self._queues.setdefault(name, created)

    def close(self) -> None:
        """Close the cached queues and the connection (the next use opens a new one)."""
        with self._lock:
            queues, self._queues = list(self._queues.values()), {}
            connection, self._connection = self._connection, None
        for queue in queues:
            queue.close()
        if connection is not None:
            connection.close()


class BullMQ:
    """The Flask extension: ``BullMQ(app)`` or ``bullmq = BullMQ(); bullmq.init_app(app)``."""

    def __init__(self, app: Flask | None = None) -> None:
        self.app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the app's ``BULLMQ_*`` settings and register the state and ``flask bullmq``."""
        app.config.setdefault("BULLMQ_URL", default_url())
        app.config.setdefault("BULLMQ_PREFIX", DEFAULT_PREFIX)
        app.config.setdefault("BULLMQ_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)
        max_connections = app.config["BULLMQ_MAX_CONNECTIONS"]
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or (max_connections < 1)
        ):
            raise ConfigurationError(
                f"BULLMQ_MAX_CONNECTIONS must be a positive int, got {max_connections!r}"
            )
        app.extensions[EXTENSION_KEY] = BullMQState(
            str(app.config["BULLMQ_URL"]), str(app.config["BULLMQ_PREFIX"]), max_connections
        )
        app.cli.add_command(_command_group())

    def _state(self) -> BullMQState:
        if has_app_context():
            app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        elif self.app is not None:
            app = self.app
        else:
            raise ConfigurationError(
                "bullmq_sync.contrib.flask.BullMQ used outside an application context: "
                "call it inside a request or `with app.app_context():`"
            )
        state = app.extensions.get(EXTENSION_KEY)
        if not isinstance(state, BullMQState):
            raise ConfigurationError(
                f"BullMQ is not initialised for app {app.name!r}: call bullmq.init_app(app) "
                "(or BullMQ(app)) before using it"
            )
        return state

    @property
    def connection(self) -> Connection:
        """The current app's pooled ``Connection``."""
        return self._state().connection

    @property
    def prefix(self) -> str:
        """The current app's ``BULLMQ_PREFIX``."""
        return self._state().prefix

    def queue(self, name: str) -> Queue:
        """The current app's ``Queue`` called ``name`` (one object per name, cached)."""
        return self._state().queue(name)

    def init_dashboard(
        self,
        app: Flask,
        *,
        auth: Callable[[], bool],
        url_prefix: str = "/queues",
        read_only: bool = False,
        queues: Iterable[str] | Callable[[str], bool] | None = None,
        name: str = "bullmq_dashboard",
    ) -> Dashboard:
        """Register the dashboard blueprint at ``url_prefix``; every request (pages, live
        events, actions) first calls ``auth()`` inside the request context and gets 403 unless
        it returns True. CSRF tokens are signed with ``app.secret_key`` when it is set."""
        from ..dashboard import Dashboard

        if not callable(auth):
            raise ConfigurationError("init_dashboard needs auth=callable returning True/False")
        state = app.extensions.get(EXTENSION_KEY)
        if not isinstance(state, BullMQState):
            raise ConfigurationError("call bullmq.init_app(app) before bullmq.init_dashboard(app)")
        secret = app.secret_key if isinstance(app.secret_key, (str, bytes)) else None
        dashboard = Dashboard(
            state.connection, state.prefix, read_only=read_only, queues=queues, secret=secret
        )
        app.register_blueprint(_dashboard_blueprint(dashboard, auth, name), url_prefix=url_prefix)
        return dashboard


def _forward(command: str, args: Sequence[str]) -> None:
    from ..cli import main

    state = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, BullMQState):
        raise click.ClickException("BullMQ is not initialised for this app (init_app)")
    code = main(["--url", state.url, "--prefix", state.prefix, command, *args])
    if code:
        raise click.exceptions.Exit(code)


def _command_group() -> AppGroup:
    group = AppGroup("bullmq", help="BullMQ queues of this app (bullmq-sync commands).")
    settings: dict[str, Any] = {"ignore_unknown_options": True, "help_option_names": []}

    for name, summary in (
        ("retry", "Retry failed/completed jobs: QUEUE JOB_ID... or QUEUE --all [--yes]."),
        ("counts", "Job counts per state: QUEUE [--json]."),
        ("jobs", "List jobs: QUEUE [--state failed] [--limit N] [--json]."),
        ("show", "One job as JSON: QUEUE JOB_ID."),
    ):

        def forward(args: tuple[str, ...], _name: str = name) -> None:
            _forward(_name, args)

        forward.__doc__ = summary
        group.command(name, context_settings=settings)(
            click.argument("args", nargs=-1, type=click.UNPROCESSED)(forward)
        )
    return group


def _dashboard_blueprint(dashboard: Dashboard, auth: Callable[[], bool], name: str) -> Blueprint:
    from flask import Blueprint, Response, abort, request

    blueprint = Blueprint(name, __name__)

    @blueprint.route("/", defaults={"rest": ""}, methods=["GET", "HEAD", "POST"])
    @blueprint.route("/<path:rest>", methods=["GET", "HEAD", "POST"])
    def dashboard_view(rest: str) -> Response:
        if auth() is not True:
            abort(403)
        environ = dict(request.environ)
        mount = request.script_root + (blueprint_prefix(request.path, rest))
        environ["SCRIPT_NAME"] = mount
        environ["PATH_INFO"] = "/" + rest
        return Response.from_app(dashboard, environ)  # type: ignore[return-value]

    return blueprint


def blueprint_prefix(path: str, rest: str) -> str:
    """The mount point: the request path without the part below the dashboard."""
    tail = "/" + rest if rest else "/"
    base = path[: len(path) - len(tail)] if path.endswith(tail) else path.rstrip("/")
    return base.rstrip("/")
