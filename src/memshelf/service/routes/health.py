"""``/healthz`` (the process answers), ``/readyz`` (it can serve) and ``/metrics``.

The probes take no key: an orchestrator calls them. ``/readyz`` makes one cheap call
to each part a request needs — the store, thread memory, the chat model's
configuration, the memory writer — each in a worker thread with a time limit, and
names the parts that failed (by error type only: an error's text can carry a host or a
user's words). ``/metrics`` takes an admin key (see ``service/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from memshelf.agent.graph import memory_writer
from memshelf.llm import parse_spec
from memshelf.llm.local import LocalChatModel
from memshelf.ops.keys import KEYS_NAMESPACE
from memshelf.service.auth import Admin
from memshelf.service.state import ServiceState

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_S = 5.0
PROBE_KEY = "readyz-probe"  # never a key id (those are hex), so the read finds nothing
OK = "ok"


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description='Each part: "ok", or "failed: <error type>" / "timeout".'
    )
    detail: str | None = Field(default=None, description="Which parts failed.")


def _store(state: ServiceState) -> None:
    state.store.get(KEYS_NAMESPACE, PROBE_KEY)


def _checkpointer(state: ServiceState) -> None:
    config: Any = {"configurable": {"thread_id": PROBE_KEY, "checkpoint_ns": ""}}
    state.checkpointer.inner.get_tuple(config)  # no owner scoping, so no registry write


def _model(state: ServiceState) -> None:
    model = getattr(memory_writer(state.graph), "model", None)
    if isinstance(model, LocalChatModel):
        if not Path(model.model_path).is_file():
            raise FileNotFoundError(model.model_path)
    elif model is None:
        parse_spec(state.settings.chat_model)


def _writer(state: ServiceState) -> None:
    writer = memory_writer(state.graph)
    backlog = getattr(writer, "backlog", None)
    if callable(backlog) and not backlog().alive:
        raise RuntimeError("the memory writer stopped")


PROBES: dict[str, Callable[[ServiceState], None]] = {
    "store": _store,
    "checkpointer": _checkpointer,
    "model": _model,
    "writer": _writer,
}


async def probe(state: ServiceState, timeout: float = PROBE_TIMEOUT_S) -> dict[str, str]:
    """Every part's answer, probed at once; a hung part costs ``timeout``, not forever."""
    checks: dict[str, str] = {}

    async def one(name: str, check: Callable[[ServiceState], None]) -> None:
        try:
            with anyio.fail_after(timeout):
                await anyio.to_thread.run_sync(check, state, abandon_on_cancel=True)
        except TimeoutError:
            checks[name] = "timeout"
        except Exception as exc:  # a probe reports a failure; it never raises one
            checks[name] = f"failed: {type(exc).__name__}"
        else:
            checks[name] = OK

    async with anyio.create_task_group() as group:
        for name, check in PROBES.items():
            group.start_soon(one, name, check)
    return {name: checks[name] for name in PROBES}


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and answering (no key, no store call)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A part cannot serve; see checks."}},
)
async def readyz(request: Request) -> JSONResponse:
    """Store, thread memory, chat model and memory writer can serve (no key)."""
    state: ServiceState | None = getattr(request.app.state, "memshelf", None)
    if state is None:
        checks = {name: "not started" for name in PROBES}
    else:
        checks = await probe(state)
    failed = [name for name, answer in checks.items() if answer != OK]
    body = Readiness(
        status="unavailable" if failed else "ready",
        checks=checks,
        detail=f"Not ready: {', '.join(failed)}." if failed else None,
    )
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request, _: Admin) -> Response:
    """Prometheus metrics of this service process (admin key)."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
