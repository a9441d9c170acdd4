"""Who is looking: the inspector's server-side session, the per-session CSRF token, and scopes.

The session cookie holds only a random session id (``secrets.token_urlsafe(32)``):
HttpOnly (page scripts cannot read it), SameSite=Strict (other sites' forms and links do
not carry it), Secure over https, and scoped to ``/ui``. The session itself is a record in
the store under ``("ui-sessions",)`` (a namespace no user route reaches), keyed by the
SHA-256 of the id, holding the key id, the user and the expiry: the API key is never in
the cookie, a guessed or forged id finds nothing, the expiry is enforced by the server,
and logging out deletes the record. Being in the store, sessions work unchanged with
``memshelf serve --workers N``. Every request re-reads the key from the same
:class:`KeyRing` the API uses, so a revoked key ends its sessions on their next click.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Header, Request, Response

from memshelf.ops.forget import UI_SESSIONS
from memshelf.ops.keys import ApiKey
from memshelf.service.auth import Principal
from memshelf.service.state import ServiceState

SESSION_COOKIE = "memshelf_ui"
LOGIN_COOKIE = "memshelf_ui_login"  # the login form's CSRF token, before any session
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 8 * 3600
SESSIONS_NAMESPACE = UI_SESSIONS  # forgetting a user deletes their sessions too
MAX_SESSION_ID_CHARS = 100


class LoginRequired(Exception):
    """No session, or one whose key is no longer valid: the viewer is sent to log in."""


class Refused(Exception):
    """A request the session may not make: a missing or wrong CSRF token, or a scope
    its key lacks (answered 403 with ``reason``; ``scope`` names it, for the page's hint)."""

    def __init__(self, reason: str, scope: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.scope = scope


@dataclass(frozen=True)
class Viewer:
    """The logged-in user: the owner every page and action acts for comes from here."""

    user_id: str
    scopes: tuple[str, ...]
    csrf: str
    teams: tuple[str, ...] = ()  # the key's teams: the only findings the inspector shows

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def services(request: Request) -> ServiceState:
    """The service's open store, agent and keys (the parent app's lifespan opened them)."""
    state: ServiceState = request.app.state.parent.state.memshelf
    return state


def csrf_for(session_id: str) -> str:
    """The session's CSRF token: unforgeable without the session id, new with each login."""
    return hmac.new(session_id.encode(), b"memshelf-ui-csrf", hashlib.sha256).hexdigest()


def _record_key(session_id: str) -> str:
    """Where a session is kept: a hash, so reading the store reveals no usable cookie."""
    return hashlib.sha256(f"memshelf-ui-session:{session_id}".encode()).hexdigest()


def open_session(state: ServiceState, key: ApiKey, *, now: float | None = None) -> str:
    """Record a new session for a key that was just verified; returns its id (the
    cookie's value). Sync: it writes the store, so async routes run it in a thread."""
    session_id = secrets.token_urlsafe(32)
    started = now if now is not None else time.time()
    record = {
        "key_id": key.key_id,
        "user_id": key.user_id,
        "created_at": started,
        "expires_at": started + SESSION_MAX_AGE_S,
    }
    ttl = SESSION_MAX_AGE_S / 60 if state.store.supports_ttl else None  # the store sweeps it
    state.store.put(SESSIONS_NAMESPACE, _record_key(session_id), record, index=False, ttl=ttl)
    return session_id


def close_session(state: ServiceState, session_id: str) -> None:
    """Delete a session's record: its cookie logs nobody in from now on."""
    if session_id and len(session_id) <= MAX_SESSION_ID_CHARS:
        state.store.delete(SESSIONS_NAMESPACE, _record_key(session_id))


def session_key(state: ServiceState, session_id: str, *, now: float | None = None) -> ApiKey | None:
    """The active key behind a session id, or None (unknown, expired, or its key revoked)."""
    if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
        return None
    item = state.store.get(SESSIONS_NAMESPACE, _record_key(session_id), refresh_ttl=False)
    if item is None:
        return None
    expires_at = item.value.get("expires_at")
    if not isinstance(expires_at, int | float) or expires_at <= (
        time.time() if now is None else now
    ):
        close_session(state, session_id)
        return None
    key = state.keys.active(str(item.value.get("key_id", "")))
    if key is None or key.user_id != item.value.get("user_id"):
        return None
    return key


def start_session(response: Response, request: Request, session_id: str) -> None:
    """Log in: set the cookie naming a session :func:`open_session` just recorded."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_MAX_AGE_S,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=base_path(request) or "/")


def end_session(response: Response, request: Request) -> None:
    """Log out in the browser (the route deletes the record with :func:`close_session`)."""
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
    session_id = request.cookies.get(SESSION_COOKIE, "")
    key = session_key(services(request), session_id)
    if key is None:
        raise LoginRequired
    # the service's request log names the (hashed) user, as for an API call
    request.state.principal = Principal(
        user_id=key.user_id, key_id=key.key_id, scopes=key.scopes, teams=key.teams
    )
    viewer = Viewer(
        user_id=key.user_id, scopes=key.scopes, csrf=csrf_for(session_id), teams=key.teams
    )
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
        raise Refused(f"Your API key lacks the {scope!r} scope this needs.", scope)


Posted = Annotated[Viewer, Depends(posted)]
