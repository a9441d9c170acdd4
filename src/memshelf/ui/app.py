"""The inspector sub-application: its routers, static files, security headers, and the
one place its errors become pages (the API answers JSON; the inspector answers HTML)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from memshelf.errors import InvalidInputError, MemshelfError, NamespaceError, NotFoundError
from memshelf.ui import findings, forget, login, memories, threads
from memshelf.ui.render import HERE, render
from memshelf.ui.session import LoginRequired, Refused, Viewer, base_path

# No inline script or style runs: even text that slipped past escaping could not execute.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def _login_required(request: Request, exc: Exception) -> Response:
    target = f"{base_path(request)}/login"
    if request.headers.get("HX-Request"):  # htmx: navigate the whole page, not a fragment
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _viewer(request: Request) -> Viewer | None:
    """The session's viewer if it was established before the error (for the page's
    navigation); None on the login page or without a session."""
    found = getattr(request.state, "viewer", None)
    return found if isinstance(found, Viewer) else None


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return render(
        request,
        "error.html",
        _viewer(request),
        status_code=403,
        title="Not allowed",
        message=exc.reason,
        missing_scope=exc.scope,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MemshelfError)
    if isinstance(exc, NotFoundError):  # one page for missing and for another user's
        return render(request, "not_found.html", _viewer(request), status_code=404)
    if isinstance(exc, InvalidInputError | NamespaceError):
        return render(
            request,
            "error.html",
            _viewer(request),
            status_code=422,
            title="Cannot do that",
            message=exc,
        )
    return render(
        request,
        "error.html",
        _viewer(request),
        status_code=503,
        title="Service unavailable",
        message="The store or model is unavailable right now; try again shortly.",
    )


async def _invalid_form(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
    return render(
        request,
        "error.html",
        _viewer(request),
        status_code=422,
        title="Cannot do that",
        message=f"The form was missing or had unusable values for: {fields}.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return render(request, "not_found.html", _viewer(request), status_code=404)
    return render(
        request,
        "error.html",
        _viewer(request),
        status_code=exc.status_code,
        title="Error",
        message=exc.detail,
    )


def create_ui(parent: FastAPI) -> FastAPI:
    """The inspector, to be mounted at ``/ui`` of ``parent`` (the service app, whose
    lifespan opens the store, agent and keys the pages use)."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.parent = parent
    ui.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (login, memories, forget, threads, findings):
        ui.include_router(module.router)
    ui.add_exception_handler(LoginRequired, _login_required)
    ui.add_exception_handler(Refused, _refused)
    ui.add_exception_handler(MemshelfError, _domain_error)
    ui.add_exception_handler(RequestValidationError, _invalid_form)
    ui.add_exception_handler(StarletteHTTPException, _http_error)

    @ui.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return ui
