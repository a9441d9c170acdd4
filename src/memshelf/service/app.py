"""The FastAPI app: a lifespan that opens the store, thread memory and agent once per
process, one router per resource, and the one place domain errors become HTTP statuses.

Middleware, outermost first: request id + one JSON log line + metrics per request
(an unforeseen error is logged and answered 500 there), then the body size cap. The
per-key rate limit runs in ``auth.require``, right after the key is verified.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from memshelf.agent.graph import memory_writer
from memshelf.config import Settings, load_settings, redact
from memshelf.errors import (
    ConfigurationError,
    InvalidInputError,
    MemshelfError,
    MessageTooLargeError,
    ModelError,
    NamespaceError,
    NotFoundError,
    StoreError,
    ValueTooLargeError,
)
from memshelf.service.auth import principal_scopes
from memshelf.service.limits import BodyLimitMiddleware, RateLimiter, calls_model
from memshelf.service.logs import RequestLogMiddleware, configure_logging
from memshelf.service.metrics import ServiceMetrics
from memshelf.service.routes import findings, health, keys, memories, runs, threads
from memshelf.service.routes import store as store_routes
from memshelf.service.state import ServiceState

log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: list[tuple[type[MemshelfError], int]] = [
    (NotFoundError, 404),
    (MessageTooLargeError, 413),
    (ValueTooLargeError, 413),
    (NamespaceError, 422),
    (InvalidInputError, 422),
    (ConfigurationError, 422),
    (StoreError, 503),
    (ModelError, 503),
]


def status_of(exc: MemshelfError) -> int:
    """The HTTP status a domain error is answered with (500 only for the unforeseen)."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


class ErrorJSON(JSONResponse):
    """An error body as ASCII JSON: an error that quotes bad input (a lone surrogate, say)
    still renders, where UTF-8 encoding would fail and turn a 4xx into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MemshelfError)
    return ErrorJSON({"detail": str(exc)}, status_code=status_of(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return ErrorJSON({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422 listing each problem's location and message. The offending input is not echoed:
    it can be large, or not even renderable (NaN, lone surrogates)."""
    assert isinstance(exc, RequestValidationError)
    problems = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return ErrorJSON({"detail": jsonable_encoder(problems)}, status_code=422)


class ErrorBody(BaseModel):
    """The body of every error answer (a 422 lists FastAPI's validation problems instead)."""

    model_config = ConfigDict(title="Error")

    detail: str = Field(description="What went wrong, and how to fix it.")


_ERRORS = {
    401: "No API key, or an invalid or revoked one.",
    403: "The key lacks the scope this route needs.",
    404: "No such object for this key's user (another user's answers exactly the same).",
    413: "The body is over MEMSHELF_MAX_REQUEST_BYTES (or a message/value over its limit).",
    429: "This key started its model runs for now; retry after Retry-After seconds.",
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


def api_routes(routes: Iterable[Any]) -> list[APIRoute]:
    """Every API route of ``app.routes``, also those inside included routers (recent
    FastAPI keeps an included router whole instead of copying its routes out)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        return [route for route in routes if isinstance(route, APIRoute)]
    found = (context.original_route for context in contexts(list(routes)))
    return [route for route in found if isinstance(route, APIRoute)]


def error_codes(route: APIRoute, method: str) -> list[int]:
    """The error statuses a route can answer with, from what it declares."""
    scopes = principal_scopes(route.dependant)
    codes = [401] if scopes else []
    codes += [403] if scopes - {None} else []
    codes += [404] if route.dependant.path_params else []
    codes += [413] if route.body_field is not None else []
    codes += [429] if calls_model(method, route.path) else []
    return codes


def document_errors(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    """Add the common error model and each route's error answers to an OpenAPI schema."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = (
        ErrorBody.model_json_schema()
    )
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for route in api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            for code in error_codes(route, method):  # a route's own words stay; gaps filled
                answers = operation.setdefault("responses", {})
                answer = answers.setdefault(str(code), {"description": _ERRORS[code]})
                answer.setdefault("content", content)
                if code in _ERROR_HEADERS:
                    answer.setdefault("headers", _ERROR_HEADERS[code])


def create_app(
    settings: Settings | None = None,
    *,
    store: BaseStore | None = None,
    model: BaseChatModel | None = None,
) -> FastAPI:
    """The memshelf service. ``store``/``model`` are for embedding and tests: passed in,
    they are used as they are and left open."""
    chosen = settings or load_settings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(chosen)
        log.info(
            "service starting",
            extra={
                "store_url_hash": redact(chosen.store_url or str(chosen.default_store_path)),
                "chat_model": chosen.chat_model,
                "embeddings": chosen.embeddings,
            },
        )
        state = await run_in_threadpool(ServiceState.open, chosen, store=store, model=model)
        app.state.memshelf = state
        writer = memory_writer(state.graph)
        built = getattr(writer, "model", None) if model is None else None  # not a caller's
        metrics.watch(state.graph, writer, built if isinstance(built, BaseChatModel) else None)
        try:
            yield
        finally:
            await run_in_threadpool(state.close)
            log.info("service stopped")

    app = FastAPI(
        title="memshelf",
        summary="Long-term memory for LangGraph agents: every user gets their own shelf.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.limiter = RateLimiter(chosen.rate_limit_per_minute)
    app.add_exception_handler(MemshelfError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(BodyLimitMiddleware, limit=chosen.max_request_bytes)
    app.add_middleware(RequestLogMiddleware, observe=metrics.observe_request)
    for module in (health, threads, runs, store_routes, memories, keys, findings):
        app.include_router(module.router)
    from memshelf.mcp.http import mount_mcp  # the MCP tools at /mcp, same keys

    mount_mcp(app)
    from memshelf.ui import create_ui  # the web inspector at /ui: cookie sessions, HTML pages

    app.mount("/ui", create_ui(app))
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate(), app.routes)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``memshelf serve --workers N``): settings from the
    environment, read in each worker process, whose stderr then holds JSON lines only
    (set before the app is built: building it mounts the MCP server, whose SDK would
    otherwise put a Rich handler on the root logger)."""
    from memshelf.service.logs import configure_process_logging

    settings = load_settings()
    configure_process_logging(settings)
    return create_app(settings)
