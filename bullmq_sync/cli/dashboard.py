"""``bullmq-sync dashboard``: the web dashboard served alone by waitress.

Binds to 127.0.0.1 unless ``--host`` says otherwise. ``BULLMQ_DASHBOARD_AUTH=user:password``
turns on HTTP basic auth (the only protection when the dashboard listens beyond loopback).
Without ``--url``/``REDIS_URL`` it serves an embedded redis-server, as ``demo`` does.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from ..connection import Connection, redact_url
from ..errors import ConfigurationError
from .commands import UsageError
from .embedded import EmbeddedRedis

AUTH_ENV = "BULLMQ_DASHBOARD_AUTH"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def basic_auth(app: WSGIApp, credentials: str) -> WSGIApp:
    """Wrap ``app`` so every request needs ``user:password`` (compared in constant time)."""
    expected = credentials.encode("utf-8")

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        given = b""
        if header[:6].lower() == "basic ":
            try:
                given = base64.b64decode(header[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
        if given and hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("WWW-Authenticate", 'Basic realm="bullmq-sync dashboard", charset="UTF-8"'),
            ],
        )
        return [b"authentication required\n"]

    return guarded


def build_app(url: str, prefix: str, read_only: bool, auth: str | None) -> WSGIApp:
    """The dashboard app for ``url``, wrapped in basic auth when ``auth`` is given."""
    from ..dashboard import Dashboard

    app: WSGIApp = Dashboard(Connection(url, max_connections=32), prefix, read_only=read_only)
    if auth:
        if ":" not in auth:
            raise UsageError(f"${AUTH_ENV} must be user:password")
        app = basic_auth(app, auth)
    return app


def run_dashboard(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; returns the exit code."""
    try:
        import waitress  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError(
            "bullmq-sync dashboard needs waitress and Jinja2: pip install 'bullmq-sync[dashboard]'"
        ) from None
    auth = os.environ.get(AUTH_ENV) or None
    if args.host not in LOOPBACK and not auth:
        sys.stderr.write(
            f"warning: serving on {args.host} without ${AUTH_ENV}: anyone who can reach this "
            "port can see and retry jobs\n"
        )
    with ExitStack() as stack:
        if args.url_given:
            url = args.url
        else:
            server = stack.enter_context(EmbeddedRedis())
            url = server.url
            sys.stdout.write(f"started an embedded redis-server on {url}\n")
        app = build_app(url, args.prefix, args.read_only, auth)
        host = f"[{args.host}]" if ":" in args.host else args.host
        sys.stdout.write(
            f"dashboard for {redact_url(url)} (prefix {args.prefix!r}"
            f"{', read-only' if args.read_only else ''}) on http://{host}:{args.port}/\n"
        )
        sys.stdout.flush()
        waitress.serve(
            app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="bullmq-sync",
            _quiet=True,
        )
    return 0
