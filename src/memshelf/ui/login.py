"""Log in with an API key (checked by the service's KeyRing), log out."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from memshelf.ui.render import render
from memshelf.ui.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Posted,
    Refused,
    base_path,
    close_session,
    end_session,
    login_token,
    open_session,
    services,
    start_session,
)

router = APIRouter()


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse(f"{base_path(request)}/memories", status_code=303)


def _login_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    holder = Response()
    token = login_token(request, holder)
    page = render(request, "login.html", status_code=status_code, login_csrf=token, error=error)
    page.headers.append("set-cookie", holder.headers["set-cookie"])
    return page


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login page: paste an API key from `memshelf keys create`."""
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=400)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Verify the key; on success start a session and go to the memories."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise Refused(
            "The login form's security token is missing or out of date. Reload the login "
            "page and try again (cookies must be enabled)."
        )
    token = api_key.strip()
    key = await run_in_threadpool(services(request).keys.verify, token) if token else None
    if key is None:
        return _login_page(
            request,
            error="That API key is not valid (unknown, revoked or mistyped). "
            "Create one with `memshelf keys create --user <you>`.",
            status_code=401,
        )
    session_id = await run_in_threadpool(open_session, services(request), key)
    response = RedirectResponse(f"{base_path(request)}/memories", status_code=303)
    start_session(response, request, session_id)
    return response


@router.post("/logout")
def logout(request: Request, viewer: Posted) -> Response:
    """End the session on the server and in the browser (the key itself stays valid;
    revoke it with `memshelf keys revoke`)."""
    close_session(services(request), request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(f"{base_path(request)}/login", status_code=303)
    end_session(response, request)
    return response
