"""The little HTTP the dashboard needs on top of WSGI: a parsed request and a response."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

MAX_FORM_BYTES = 1 << 20
"""The largest form body read (a selection of many job ids fits easily)."""

StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    503: "Service Unavailable",
}


class Request:
    """One request: method, path below the mount point, query, form and cookies."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.script_name = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        self.path = _wsgi_text(str(environ.get("PATH_INFO", ""))) or "/"
        self.query = _first(parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        self._form: dict[str, list[str]] | None = None

    def header(self, name: str) -> str:
        return str(self.environ.get("HTTP_" + name.upper().replace("-", "_"), ""))

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(str(self.environ.get("HTTP_COOKIE", "")))
        except CookieError:  # a malformed cookie header from the browser is just no cookie
            return {}
        return {key: morsel.value for key, morsel in jar.items()}

    @property
    def form_lists(self) -> dict[str, list[str]]:
        """The urlencoded body (read once; larger than ``MAX_FORM_BYTES`` is refused)."""
        if self._form is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > MAX_FORM_BYTES:
                raise HTTPError(413, "form too large")
            body = self.environ["wsgi.input"].read(length) if length > 0 else b""
            self._form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return self._form

    def form(self, name: str, default: str = "") -> str:
        values = self.form_lists.get(name)
        return values[0] if values else default

    def url(self, path: str) -> str:
        """An absolute path to ``path`` below the mount point."""
        return self.script_name + path

    @property
    def wants_stream(self) -> bool:
        return "application/x-ndjson" in self.header("Accept")


def _wsgi_text(value: str) -> str:
    """PEP 3333 passes paths as latin-1 decoded bytes: recover the UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _first(values: dict[str, list[str]]) -> dict[str, str]:
    return {key: items[0] for key, items in values.items() if items}


class HTTPError(Exception):
    """Ends a request with a status and a short plain message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Response:
    """A status, headers and a body (bytes, or an iterator of bytes for streams)."""

    body: bytes | Iterable[bytes] = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [("Content-Type", self.content_type), *SECURITY_HEADERS, *self.headers]
        if isinstance(self.body, bytes):
            headers.append(("Content-Length", str(len(self.body))))
        start_response(f"{self.status} {_REASONS.get(self.status, 'Error')}", headers)
        return [self.body] if isinstance(self.body, bytes) else self.body


SECURITY_HEADERS = (
    # Nothing but our own files: an injected <script> or inline handler would not run.
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


def redirect(location: str) -> Response:
    """A 303 to a path we built (never to a URL taken from the request)."""
    return Response(b"", 303, "text/plain; charset=utf-8", [("Location", location)])


def text(status: int, message: str) -> Response:
    return Response(message.encode("utf-8"), status, "text/plain; charset=utf-8")


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (queue names and job ids are arbitrary text)."""
    return quote(value, safe="")


def chunks(lines: Iterator[str]) -> Iterator[bytes]:
    for line in lines:
        yield line.encode("utf-8")
