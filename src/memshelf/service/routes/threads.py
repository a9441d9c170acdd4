"""LangGraph server's thread routes (``client.threads.*`` of ``langgraph-sdk``).

A thread id is the caller's name for a conversation, scoped to the key's user: two users
naming a thread alike have two threads, and another user's thread answers exactly like
one that does not exist (404, the same body).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from memshelf.errors import NotFoundError
from memshelf.ops.threads import (
    MAX_SEARCH_LIMIT,
    ThreadInfo,
    ThreadState,
    create_thread,
    delete_thread,
    get_thread,
    require_thread,
    search_threads,
    thread_history,
    thread_state,
    update_thread,
)
from memshelf.service import _runs
from memshelf.service._runs import RunManager, Runs
from memshelf.service.auth import Chat, Services
from memshelf.service.sse import jsonable

router = APIRouter(tags=["threads"])
ThreadId = Annotated[str, Field(min_length=1, max_length=256)]


def _unsupported(body: BaseModel, fields: dict[str, str]) -> None:
    for name, why in fields.items():
        if getattr(body, name, None):
            raise ValueError(f"{name} is not supported by memshelf: {why}")


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer SDK fields must not break a create

    thread_id: ThreadId | None = Field(
        None,
        pattern=r"^[^/]+$",  # it goes in URL paths
        description="Your name for it (no '/'); a random UUID if absent.",
    )
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: Any = None
    supersteps: Any = None

    @model_validator(mode="after")
    def _supported(self) -> ThreadCreate:
        _unsupported(
            self,
            {
                "ttl": "threads live until deleted (DELETE /threads/{thread_id}).",
                "supersteps": "create the thread, then run turns on it.",
            },
        )
        return self


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: Any = None

    @model_validator(mode="after")
    def _supported(self) -> ThreadPatch:
        _unsupported(self, {"ttl": "threads live until deleted (DELETE /threads/{thread_id})."})
        return self


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")  # sort_by, select, extract: newest first, all

    metadata: dict[str, Any] | None = None
    ids: list[ThreadId] | None = Field(None, max_length=MAX_SEARCH_LIMIT)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    values: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=MAX_SEARCH_LIMIT)
    offset: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _supported(self) -> ThreadSearch:
        _unsupported(self, {"values": "search by metadata or ids."})
        return self


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(10, ge=1, le=MAX_SEARCH_LIMIT)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class ThreadOut(BaseModel):
    thread_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any]
    status: Literal["idle", "busy", "interrupted", "error"]
    values: dict[str, Any] | None = Field(description="The current state; null before a turn.")
    interrupts: dict[str, Any] = Field(default_factory=dict)


class StateOut(BaseModel):
    values: dict[str, Any]
    next: list[str]
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str | None
    parent_checkpoint: dict[str, Any] | None
    tasks: list[dict[str, Any]]
    interrupts: list[Any]


def _thread(
    info: ThreadInfo, values: dict[str, Any] | None, runs: RunManager, user_id: str
) -> dict[str, Any]:
    return {
        "thread_id": info.thread_id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "metadata": dict(info.metadata),
        "status": "busy" if runs.busy(user_id, info.thread_id) else "idle",
        "values": jsonable(values) if values else None,
        "interrupts": {},
    }


def _state(state: ThreadState) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(state)
    return out


@router.post("/threads", response_model=ThreadOut)
async def create(body: ThreadCreate, principal: Chat, services: Services, runs: Runs) -> Any:
    """Create an empty thread (``if_exists``: ``raise`` → 409, ``do_nothing`` → it as it is)."""
    user = principal.user_id
    info, created = await run_in_threadpool(
        create_thread,
        services.checkpointer,
        user,
        body.thread_id,
        body.metadata,
        if_exists=body.if_exists,
    )
    if created:
        return _thread(info, None, runs, user)
    if body.if_exists == "raise":
        raise HTTPException(
            409,
            f"You already have a thread {info.thread_id!r}; send if_exists='do_nothing' "
            "to get it back, or choose another id.",
        )
    info, values = await run_in_threadpool(get_thread, services.graph, user, info.thread_id)
    return _thread(info, values, runs, user)


@router.post("/threads/search", response_model=list[ThreadOut])
async def search(body: ThreadSearch, principal: Chat, services: Services, runs: Runs) -> Any:
    """The caller's threads matching ``metadata`` (and ``ids``/``status``), newest first."""
    user = principal.user_id
    paged = body.status is None
    found = await run_in_threadpool(
        search_threads,
        services.store,
        user,
        metadata=body.metadata,
        ids=body.ids,
        limit=body.limit if paged else MAX_SEARCH_LIMIT,
        offset=body.offset if paged else 0,
    )

    def with_values() -> list[dict[str, Any]]:
        out = []
        for info in found:
            with contextlib.suppress(NotFoundError):  # deleted meanwhile
                out.append(_thread(*get_thread(services.graph, user, info.thread_id), runs, user))
        return out

    threads = await run_in_threadpool(with_values)
    if paged:
        return threads
    chosen = [t for t in threads if t["status"] == body.status]
    return chosen[body.offset : body.offset + body.limit]


@router.get("/threads/{thread_id}", response_model=ThreadOut)
async def get(thread_id: str, principal: Chat, services: Services, runs: Runs) -> Any:
    """One of the caller's threads with its current values."""
    user = principal.user_id
    info, values = await run_in_threadpool(get_thread, services.graph, user, thread_id)
    return _thread(info, values, runs, user)


@router.patch("/threads/{thread_id}", response_model=ThreadOut)
async def update(
    thread_id: str, body: ThreadPatch, principal: Chat, services: Services, runs: Runs
) -> Any:
    """Merge metadata into one of the caller's threads."""
    user = principal.user_id
    await run_in_threadpool(update_thread, services.checkpointer, user, thread_id, body.metadata)
    info, values = await run_in_threadpool(get_thread, services.graph, user, thread_id)
    return _thread(info, values, runs, user)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete(thread_id: str, principal: Chat, services: Services, runs: Runs) -> Response:
    """Delete one of the caller's threads: its runs are stopped, then every checkpoint.

    No run starts on it meanwhile. A run that does not stop within the wait (a model turn
    that long) or one in another service process answers 409 and the thread stays: its
    next checkpoint would otherwise bring a deleted thread back."""
    user = principal.user_id
    with runs.blocking(user, thread_id):
        stopping = runs.stop_thread(user, thread_id)
        if stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(r.done() for r in stopping)), _runs.STOP_RUNS_WAIT_S
                )
        if not all(r.finished for r in stopping) or await run_in_threadpool(
            runs.leased_elsewhere, user, thread_id
        ):
            await run_in_threadpool(require_thread, services.checkpointer, user, thread_id)
            raise HTTPException(
                409, "A run is still in progress on this thread; cancel it and retry."
            )
        await run_in_threadpool(delete_thread, services.checkpointer, user, thread_id)
        if await run_in_threadpool(runs.leased_elsewhere, user, thread_id):
            raise HTTPException(  # blocked in the store: never, but it would revive the thread
                409, "A run started on this thread while it was deleted; delete it again."
            )
    return Response(status_code=204)


@router.get("/threads/{thread_id}/state", response_model=StateOut)
async def get_state(thread_id: str, principal: Chat, services: Services) -> Any:
    """The thread's current state (values, next nodes, checkpoint)."""
    state = await run_in_threadpool(thread_state, services.graph, principal.user_id, thread_id)
    return _state(state)


@router.post("/threads/{thread_id}/history", response_model=list[StateOut])
async def get_history(
    thread_id: str, body: HistoryQuery, principal: Chat, services: Services
) -> Any:
    """The thread's past states, newest first."""
    before = body.before.get("checkpoint_id") if isinstance(body.before, dict) else body.before
    states = await run_in_threadpool(
        thread_history,
        services.graph,
        principal.user_id,
        thread_id,
        limit=body.limit,
        before=before,
        metadata=body.metadata,
    )
    return [_state(s) for s in states]
