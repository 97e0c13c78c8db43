"""CSRF protection for the dashboard's actions.

``SignedToken`` (Flask and standalone): a random nonce in an HttpOnly, SameSite=Strict cookie;
the form carries HMAC(secret, nonce). A POST must bring both and they must match, and a
cross-site ``Origin`` header is refused as well. ``HostChecked`` (Django): Django's own
middleware checked the request before the dashboard saw it; the dashboard only renders the
token Django gave it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Protocol
from urllib.parse import urlsplit

from .http import Request

COOKIE = "bullmq_dashboard_csrf"
FIELD = "csrf_token"
HOST_TOKEN_KEY = "bullmq_sync.dashboard.csrf"
"""environ key where a host framework puts ``(field_name, token)`` for the forms."""


class CSRFPolicy(Protocol):
    def field(self, request: Request) -> tuple[str, str]:
        """The hidden form field (name, value) to put in every form."""

    def check(self, request: Request) -> bool:
        """True when a POST may run."""

    def cookie(self, request: Request) -> str | None:
        """A Set-Cookie header value to send with this response, or None."""


class SignedToken:
    """Double-submit cookie whose form half is signed with a server secret."""

    def __init__(self, secret: bytes | str | None = None) -> None:
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        self._secret = secret or secrets.token_bytes(32)

    def _nonce(self, request: Request) -> str:
        found = request.environ.get("bullmq_sync.dashboard.nonce")
        if found is None:
            found = request.cookies.get(COOKIE, "")
            if len(found) != 32 or not all(c in "0123456789abcdef" for c in found):
                found = secrets.token_hex(16)
                request.environ["bullmq_sync.dashboard.new_nonce"] = True
            request.environ["bullmq_sync.dashboard.nonce"] = found
        return str(found)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def field(self, request: Request) -> tuple[str, str]:
        return FIELD, self._sign(self._nonce(request))

    def check(self, request: Request) -> bool:
        nonce = request.cookies.get(COOKIE, "")
        sent = request.form(FIELD) or request.header("X-CSRF-Token")
        if not nonce or not sent or not same_origin(request):
            return False
        return hmac.compare_digest(self._sign(nonce), sent)

    def cookie(self, request: Request) -> str | None:
        if not request.environ.get("bullmq_sync.dashboard.new_nonce"):
            return None
        path = request.script_name or "/"
        secure = "; Secure" if request.environ.get("wsgi.url_scheme") == "https" else ""
        return f"{COOKIE}={self._nonce(request)}; Path={path}; HttpOnly; SameSite=Strict{secure}"


class HostChecked:
    """The host framework (Django) checks CSRF itself and hands us its token."""

    def field(self, request: Request) -> tuple[str, str]:
        found: Any = request.environ.get(HOST_TOKEN_KEY)
        if not (isinstance(found, tuple) and len(found) == 2):
            raise RuntimeError("the host framework did not provide a CSRF token")
        return str(found[0]), str(found[1])

    def check(self, request: Request) -> bool:
        return HOST_TOKEN_KEY in request.environ

    def cookie(self, request: Request) -> str | None:
        return None


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.header("Origin")
    if not origin:
        return True
    if origin == "null":
        return False
    host = request.header("Host") or str(request.environ.get("SERVER_NAME", ""))
    return urlsplit(origin).netloc.lower() == host.lower()
