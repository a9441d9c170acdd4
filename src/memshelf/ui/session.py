"""Who is looking: the inspector's login cookie, the per-session CSRF token, and scopes.

The session cookie holds ``<nonce>.<api key>``: HttpOnly (page scripts cannot read it),
SameSite=Strict (other sites' forms and links do not carry it), Secure over https, and
scoped to ``/ui``. Keeping the key itself there, rather than a session id, keeps the
inspector stateless: it works unchanged with ``memshelf serve --workers N`` and across
restarts, and every request verifies the key against the same :class:`KeyRing` the API
uses, so a revoked key logs its sessions out on their next click. The key never appears
in a page, a URL or a log; the nonce, new at every login, makes each session's CSRF
token (an HMAC keyed by the key) different from the last one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Header, Request, Response

from memshelf.service.auth import Principal
from memshelf.service.state import ServiceState

SESSION_COOKIE = "memshelf_ui"
LOGIN_COOKIE = "memshelf_ui_login"  # the login form's CSRF token, before any session
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 8 * 3600


class LoginRequired(Exception):
    """No session, or one whose key is no longer valid: the viewer is sent to log in."""


class Refused(Exception):
    """A request the session may not make: a missing or wrong CSRF token, or a scope
    its key lacks (answered 403 with ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Viewer:
    """The logged-in user: the owner every page and action acts for comes from here."""

    user_id: str
    scopes: tuple[str, ...]
    csrf: str

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def services(request: Request) -> ServiceState:
    """The service's open store, agent and keys (the parent app's lifespan opened them)."""
    state: ServiceState = request.app.state.parent.state.memshelf
    return state


def csrf_for(token: str, nonce: str) -> str:
    """The session's CSRF token: unforgeable without the key, new with each login."""
    message = f"memshelf-ui-csrf:{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def start_session(response: Response, request: Request, token: str) -> None:
    """Log in: set the session cookie for a key that was just verified."""
    nonce = secrets.token_hex(16)
    response.set_cookie(
        SESSION_COOKIE,
        f"{nonce}.{token}",
        max_age=SESSION_MAX_AGE_S,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=base_path(request) or "/")


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def login_token(request: Request, response: Response) -> str:
    """The login form's CSRF token (double submit: a cookie and a hidden field)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return token


def base_path(request: Request) -> str:
    """Where the inspector is mounted (``/ui``, behind any proxy prefix)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def current_viewer(request: Request) -> Viewer:
    """The session's viewer; :class:`LoginRequired` without a valid one. A sync
    dependency: FastAPI runs it in a worker thread, since verifying reads the store."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    nonce, _, token = raw.partition(".")
    if not nonce or not token:
        raise LoginRequired
    key = services(request).keys.verify(token)
    if key is None:
        raise LoginRequired
    # the service's request log names the (hashed) user, as for an API call
    request.state.principal = Principal(user_id=key.user_id, key_id=key.key_id, scopes=key.scopes)
    viewer = Viewer(user_id=key.user_id, scopes=key.scopes, csrf=csrf_for(token, nonce))
    request.state.viewer = viewer  # error pages keep the navigation of a logged-in viewer
    return viewer


Session = Annotated[Viewer, Depends(current_viewer)]


def _checked(viewer: Viewer, form_token: str | None, header_token: str | None) -> Viewer:
    sent = header_token or form_token or ""
    if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise Refused(
            "This form's security token is missing or out of date (a form from another "
            "site, or from before you logged in again). Reload the page and try again."
        )
    return viewer


def posted(
    viewer: Session,
    csrf_token: Annotated[str | None, Form()] = None,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Viewer:
    """A POST from this session's own page: the CSRF token must match (form field, or
    the header htmx sends)."""
    return _checked(viewer, csrf_token, x_csrf_token)


def needs(viewer: Viewer, scope: str) -> None:
    """Refuse a page or action the session's key has no scope for."""
    if not viewer.can(scope):
        raise Refused(f"Your API key lacks the {scope!r} scope this needs.")


Posted = Annotated[Viewer, Depends(posted)]
