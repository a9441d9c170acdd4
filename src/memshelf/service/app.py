"""The FastAPI app: a lifespan that opens the store, thread memory and agent once per
process, one router per resource, and the one place domain errors become HTTP statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore
from starlette.concurrency import run_in_threadpool

from memshelf.config import Settings, load_settings
from memshelf.errors import (
    ConfigurationError,
    MemshelfError,
    MessageTooLargeError,
    ModelError,
    NamespaceError,
    NotFoundError,
    StoreError,
    ValueTooLargeError,
)
from memshelf.service.routes import health, keys, memories, runs, threads
from memshelf.service.routes import store as store_routes
from memshelf.service.state import ServiceState

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: list[tuple[type[MemshelfError], int]] = [
    (NotFoundError, 404),
    (MessageTooLargeError, 413),
    (ValueTooLargeError, 413),
    (NamespaceError, 422),
    (ConfigurationError, 422),
    (StoreError, 503),
    (ModelError, 503),
]


def status_of(exc: MemshelfError) -> int:
    """The HTTP status a domain error is answered with (500 only for the unforeseen)."""
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemshelfError)
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


def create_app(
    settings: Settings | None = None,
    *,
    store: BaseStore | None = None,
    model: BaseChatModel | None = None,
) -> FastAPI:
    """The memshelf service. ``store``/``model`` are for embedding and tests: passed in,
    they are used as they are and left open."""
    chosen = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(ServiceState.open, chosen, store=store, model=model)
        app.state.memshelf = state
        try:
            yield
        finally:
            await run_in_threadpool(state.close)

    app = FastAPI(
        title="memshelf",
        summary="Long-term memory for LangGraph agents: every user gets their own shelf.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(MemshelfError, _domain_error)
    for module in (health, threads, runs, store_routes, memories, keys):
        app.include_router(module.router)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``memshelf serve --workers N``): settings from the
    environment, read in each worker process."""
    return create_app()
