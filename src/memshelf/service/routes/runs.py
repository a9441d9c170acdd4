"""LangGraph server's run routes (``client.runs.*``) and its one assistant, ``agent``.

``stream`` answers with server-sent events named as LangGraph's server names them
(``metadata`` first, ``values`` / ``updates`` / ``messages`` ..., ``error``, ``end`` last,
each with an ``id:``); ``wait`` and ``join`` answer with the thread's final values.
``?wait_for_memory=true`` holds the answer until the memories the user told are written
(read-your-writes); if that takes longer than the wait allows, the answer says so
(header ``Memshelf-Memory-Pending: true``, or a ``memory_pending`` event before ``end``).
Stateless runs (no thread) run on a thread that is deleted afterwards unless
``on_completion="keep"``.

Every service process (``--workers N``) answers for every run: the process running it
streams its events; any other one answers ``get``, ``join`` and ``list`` from the run's
record in the store, ``cancel`` by a flag in the store the running process picks up
within half a second, and ``join_stream`` by following the record: ``metadata``, then
the thread's final ``values`` (or the ``error``), then ``end`` — no token-by-token
``messages`` from another process. A run whose process died is reported as ended in
error ("Interrupted") once its lease runs out (30 s). See :mod:`memshelf.service._runs`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from memshelf.agent.graph import memory_writer
from memshelf.errors import NotFoundError
from memshelf.ops.memories import wait_for_memories
from memshelf.ops.threads import create_thread, require_thread, thread_state, turn_messages
from memshelf.service._runs import (
    ASSISTANT_ID,
    STREAM_MODES,
    Run,
    RunManager,
    Runs,
    RunStatus,
    ServiceClosingError,
    StreamMode,
    ThreadBusyError,
    require_assistant,
)
from memshelf.service.auth import Chat, Principal, Services
from memshelf.service.routes.memories import MEMORY_PENDING, PENDING_DOC
from memshelf.service.sse import HEARTBEAT, EventStream, dumps, frame, jsonable

router = APIRouter(tags=["runs"])
MEMORY_WAIT_S = 120.0  # longest ?wait_for_memory=true holds an answer
RECORD_POLL_S = 0.25  # how often a join follows another process's run record
HEARTBEAT_S = 15.0
STARTED = datetime(2024, 1, 1, tzinfo=UTC).isoformat()  # the assistant is built in

SSE = (
    "Server-sent events (event, data: JSON, id): metadata first, then values / updates / "
    "messages per stream_mode, error if the run failed, memory_pending if "
    "wait_for_memory=true ran out before the memories were written, end last."
)
WaitForMemory = Annotated[
    bool,
    Query(
        description="Answer only once the memories this user told are written "
        "(read-your-writes for the memory routes and the next thread)."
    ),
]


class InputMessage(BaseModel):
    """A message as LangGraph clients send it: ``role`` (or ``type``) and ``content``."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user", "human", "assistant", "ai", "system"] | None = None
    type: Literal["human", "ai", "system"] | None = None
    content: str | list[dict[str, Any]]

    @model_validator(mode="after")
    def _has_role(self) -> InputMessage:
        if self.role is None and self.type is None:
            raise ValueError("each message needs a role: 'user', 'assistant' or 'system'")
        return self


class RunInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[InputMessage] = Field(min_length=1, max_length=1000)


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recursion_limit: int | None = Field(None, ge=1, le=1000)
    tags: list[str] = Field(default_factory=list)
    configurable: dict[str, Any] = Field(
        default_factory=dict,
        description="Must stay empty: the user comes from the API key, the thread from the path.",
    )

    @model_validator(mode="after")
    def _nothing_configurable(self) -> RunConfig:
        if self.configurable:
            raise ValueError(
                "config.configurable is not accepted: memshelf takes the user from your API "
                f"key and the thread from the URL (got keys {sorted(self.configurable)})"
            )
        return self


_UNSUPPORTED = {
    "command": "memshelf's agent never interrupts, so there is nothing to resume.",
    "context": "the agent takes no static context.",
    "interrupt_before": "memshelf's agent runs a turn whole.",
    "interrupt_after": "memshelf's agent runs a turn whole.",
    "webhook": "poll GET /threads/{thread_id}/runs/{run_id} or join the run instead.",
    "checkpoint": "runs continue from the thread's latest state.",
    "checkpoint_id": "runs continue from the thread's latest state.",
    "after_seconds": "runs start at once.",
}


class RunCreate(BaseModel):
    """LangGraph's run request; fields the SDK sends that change nothing here are ignored
    (``stream_subgraphs``, ``stream_resumable``, ``durability``, ``feedback_keys``...)."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str = Field(description=f"The graph to run: {ASSISTANT_ID!r}.")
    input: RunInput
    stream_mode: StreamMode | list[StreamMode] = "values"
    metadata: dict[str, Any] | None = None
    config: RunConfig | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "enqueue"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    on_completion: Literal["delete", "keep"] = "delete"
    command: Any = None
    context: Any = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    webhook: Any = None
    checkpoint: Any = None
    checkpoint_id: Any = None
    after_seconds: Any = None

    @model_validator(mode="after")
    def _supported(self) -> RunCreate:
        for name, why in _UNSUPPORTED.items():
            if getattr(self, name):
                raise ValueError(f"{name} is not supported by memshelf: {why}")
        if self.multitask_strategy in ("interrupt", "rollback"):
            raise ValueError(
                f"multitask_strategy={self.multitask_strategy!r} is not supported: use "
                "'enqueue' (run after the active run) or 'reject' (409 while one is active)"
            )
        return self

    def modes(self) -> list[str]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(modes) or ["values"]


class RunOut(BaseModel):
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: str
    updated_at: str
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: str
    kwargs: dict[str, Any]


class AssistantOut(BaseModel):
    assistant_id: str
    graph_id: str
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    name: str
    description: str | None
    created_at: str
    updated_at: str


class AssistantSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


AGENT: dict[str, Any] = {
    "assistant_id": ASSISTANT_ID,
    "graph_id": ASSISTANT_ID,
    "config": {},
    "context": {},
    "metadata": {"created_by": "system"},
    "version": 1,
    "name": ASSISTANT_ID,
    "description": "memshelf's research agent: recalls what the user told it in any thread.",
    "created_at": STARTED,
    "updated_at": STARTED,
}


# --- starting and following runs ------------------------------------------------------


async def _start(
    body: RunCreate,
    principal: Principal,
    services: Services,
    runs: RunManager,
    thread_id: str | None,
) -> Run:
    """Check everything, then start the run: a bad request never becomes a run."""
    user = principal.user_id
    require_assistant(body.assistant_id)
    try:
        await run_in_threadpool(runs.refuse_if_blocked, user, thread_id)  # reads the store
    except ThreadBusyError as exc:
        raise HTTPException(409, str(exc)) from None
    messages = turn_messages(
        [m.model_dump(exclude_none=True) for m in body.input.messages],
        services.settings.max_message_chars,
    )
    temporary = thread_id is None and body.on_completion == "delete"
    if thread_id is None or body.if_not_exists == "create":
        name = thread_id or str(uuid.uuid4())
        info, _ = await run_in_threadpool(
            create_thread, services.checkpointer, user, name, if_exists="do_nothing"
        )
    else:
        info = await run_in_threadpool(require_thread, services.checkpointer, user, thread_id)
    run = Run(
        user_id=user,
        thread_id=info.thread_id,
        modes=body.modes(),
        metadata=body.metadata,
        multitask_strategy=body.multitask_strategy,
        temporary=temporary,
        recursion_limit=body.config.recursion_limit if body.config else None,
    )
    try:
        return await run_in_threadpool(runs.start, run, messages)
    except ThreadBusyError as exc:
        raise HTTPException(409, str(exc)) from None
    except ServiceClosingError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None


def _location(run: Run) -> dict[str, str]:
    """Where the run is (``Content-Location``: the SDK's ``on_run_created``) and, for a
    stream, where to resume it (``Location``: the SDK reconnects there with Last-Event-ID).
    A stateless run's thread is deleted when it ends: nothing stays to point at, so none."""
    if run.temporary:
        return {}
    path = f"/threads/{quote(run.thread_id, safe='')}/runs/{run.run_id}"
    return {"Content-Location": path, "Location": f"{path}/stream"}


def _created_at(run: Run) -> dict[str, str]:
    return {k: v for k, v in _location(run).items() if k == "Content-Location"}


async def _memory_written(services: Services, user_id: str) -> bool:
    """Wait for the user's memories to be written; False if the wait ran out first."""
    writer = memory_writer(services.graph)
    return await run_in_threadpool(wait_for_memories, writer, user_id, timeout=MEMORY_WAIT_S)


def _pending_event() -> bytes:
    """Sent before ``end`` when ``wait_for_memory`` ran out: memories are still pending
    (no ``id:``: it is not one of the run's events, a reconnect never resumes after it)."""
    return frame("memory_pending", dumps({"memory_pending": True}))


def _stream(
    run: Run,
    services: Services,
    *,
    modes: list[str] | None,
    start: int,
    cancel_on_close: bool,
    wait_for_memory: bool,
    headers: dict[str, str],
) -> EventStream:
    async def body() -> Any:
        async for event in run.events(start, modes):
            if event is None:
                yield HEARTBEAT
                continue
            written = event.name != "end" or not wait_for_memory
            if not written and not await _memory_written(services, run.user_id):
                yield _pending_event()
            yield event.sse

    def on_close() -> None:
        if cancel_on_close and not run.finished:
            run.stop.set()

    return EventStream(body(), on_close=on_close, headers=headers)


async def _gone(request: Request) -> None:
    """Returns when the client disconnects (the request body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _result(
    run: Run,
    request: Request,
    services: Services,
    *,
    cancel_on_disconnect: bool,
    wait_for_memory: bool,
    headers: dict[str, str],
) -> Response:
    done, gone = asyncio.ensure_future(run.done()), asyncio.ensure_future(_gone(request))
    try:
        await asyncio.wait({done, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.cancel()
        gone.cancel()
    if not run.finished:  # the client left: nobody to answer
        if cancel_on_disconnect:
            run.stop.set()
        return Response(status_code=499)
    if wait_for_memory and not await _memory_written(services, run.user_id):
        headers = {**headers, MEMORY_PENDING: "true"}
    return JSONResponse(jsonable(run.result()), headers=headers)


# --- stateful runs ----------------------------------------------------------------------


@router.post(
    "/threads/{thread_id}/runs/stream",
    response_class=EventStream,
    status_code=200,
    response_description=SSE,
)
async def stream_run(
    thread_id: str,
    body: RunCreate,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait_for_memory: WaitForMemory = False,
) -> EventStream:
    """Run a turn and stream it as server-sent events."""
    run = await _start(body, principal, services, runs, thread_id)
    return _stream(
        run,
        services,
        modes=None,
        start=0,
        cancel_on_close=body.on_disconnect == "cancel",
        wait_for_memory=wait_for_memory,
        headers=_location(run),
    )


@router.post("/threads/{thread_id}/runs/wait", responses=PENDING_DOC)
async def wait_run(
    thread_id: str,
    body: RunCreate,
    request: Request,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait_for_memory: WaitForMemory = False,
) -> Response:
    """Run a turn and answer with the thread's final values."""
    run = await _start(body, principal, services, runs, thread_id)
    return await _result(
        run,
        request,
        services,
        cancel_on_disconnect=body.on_disconnect == "cancel",
        wait_for_memory=wait_for_memory,
        headers=_created_at(run),
    )


@router.post("/threads/{thread_id}/runs", response_model=RunOut)
async def create_run(
    thread_id: str, body: RunCreate, principal: Chat, services: Services, runs: Runs
) -> JSONResponse:
    """Start a turn in the background; follow it with join, join_stream or get."""
    run = await _start(body, principal, services, runs, thread_id)
    return JSONResponse(
        run.public(), headers={"Content-Location": _location(run)["Content-Location"]}
    )


@router.get("/threads/{thread_id}/runs", response_model=list[RunOut])
async def list_runs(
    thread_id: str,
    principal: Chat,
    services: Services,
    runs: Runs,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: RunStatus | None = None,
) -> Any:
    """The thread's runs, newest first: this process's, and the records of other service
    processes' (``--workers N``)."""
    user = principal.user_id
    await run_in_threadpool(require_thread, services.checkpointer, user, thread_id)
    mine = {r.run_id: r.public() for r in runs.of_thread(user, thread_id)}
    found = dict(mine)
    for record in await run_in_threadpool(runs.records, user, thread_id):
        found.setdefault(record["run_id"], _public(record))
    chosen = [r for r in found.values() if status is None or r["status"] == status]
    chosen.sort(key=lambda r: str(r["created_at"]), reverse=True)
    return chosen[offset : offset + limit]


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("error", "finished")}


async def _find(
    principal: Principal, services: Services, runs: RunManager, thread_id: str, run_id: str
) -> Run:
    await run_in_threadpool(require_thread, services.checkpointer, principal.user_id, thread_id)
    return runs.find(principal.user_id, thread_id, run_id)


async def _find_anywhere(
    principal: Principal, services: Services, runs: RunManager, thread_id: str, run_id: str
) -> Run | dict[str, Any]:
    """The run if this process runs it, else its record from the process that does."""
    try:
        return await _find(principal, services, runs, thread_id, run_id)
    except NotFoundError:
        return await run_in_threadpool(runs.record, principal.user_id, thread_id, run_id)


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=RunOut)
async def get_run(
    thread_id: str, run_id: str, principal: Chat, services: Services, runs: Runs
) -> Any:
    """One run of the thread (run by any service process)."""
    found = await _find_anywhere(principal, services, runs, thread_id, run_id)
    return found.public() if isinstance(found, Run) else _public(found)


@router.get("/threads/{thread_id}/runs/{run_id}/join", responses=PENDING_DOC)
async def join_run(
    thread_id: str,
    run_id: str,
    request: Request,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait_for_memory: WaitForMemory = False,
) -> Response:
    """Wait for a run to finish; answer with the thread's final values. A run of another
    service process is followed through its record, then the thread's state answers."""
    found = await _find_anywhere(principal, services, runs, thread_id, run_id)
    if isinstance(found, Run):
        return await _result(
            found,
            request,
            services,
            cancel_on_disconnect=False,
            wait_for_memory=wait_for_memory,
            headers={},
        )
    user = principal.user_id
    while not found.get("finished"):
        if await request.is_disconnected():
            return Response(status_code=499)
        await asyncio.sleep(RECORD_POLL_S)
        found = await run_in_threadpool(runs.record, user, thread_id, run_id)
    headers: dict[str, str] = {}
    if wait_for_memory and not await _memory_written(services, user):
        headers[MEMORY_PENDING] = "true"
    if found.get("error") is not None:
        return JSONResponse(jsonable({"__error__": found["error"]}), headers=headers)
    state = await run_in_threadpool(thread_state, services.graph, user, thread_id)
    return JSONResponse(jsonable(state.values), headers=headers)


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream", response_class=EventStream, status_code=200
)
async def join_stream(
    thread_id: str,
    run_id: str,
    principal: Chat,
    services: Services,
    runs: Runs,
    stream_mode: Annotated[list[str] | None, Query(description=f"Any of {STREAM_MODES}.")] = None,
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    wait_for_memory: WaitForMemory = False,
) -> EventStream:
    """Follow a run's events: from the start, or after ``Last-Event-ID`` (a reconnect)."""
    modes = [m for m in stream_mode or [] if m]  # the SDK sends an empty one for "all"
    if unknown := set(modes) - set(STREAM_MODES):
        raise HTTPException(
            422, f"Unknown stream_mode {sorted(unknown)}; use any of {STREAM_MODES}."
        )
    found = await _find_anywhere(principal, services, runs, thread_id, run_id)
    seen = last_event_id or ""  # an id this service cannot have sent (not ASCII, huge): none
    start = int(seen) + 1 if seen.isascii() and seen.isdigit() and len(seen) <= 18 else 0
    if not isinstance(found, Run):
        return _follow_record(
            found,
            services,
            runs,
            principal.user_id,
            modes=modes or None,
            start=start,
            cancel_on_close=cancel_on_disconnect,
            wait_for_memory=wait_for_memory,
        )
    run = found
    return _stream(
        run,
        services,
        modes=modes or None,
        start=start,
        cancel_on_close=cancel_on_disconnect,
        wait_for_memory=wait_for_memory,
        headers={},
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    thread_id: str,
    run_id: str,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Stop a run after the chunk in hand (``interrupt``: the thread keeps the steps done),
    whichever service process runs it (``wait``: answer once it has ended)."""
    if action != "interrupt":
        raise HTTPException(422, "action='rollback' is not supported; use 'interrupt'.")
    found = await _find_anywhere(principal, services, runs, thread_id, run_id)
    if isinstance(found, Run):
        found.stop.set()
        if wait:
            await found.done()
        return Response(status_code=202)
    user = principal.user_id
    if not found.get("finished"):
        await run_in_threadpool(runs.request_cancel, user, run_id)
    while wait and not found.get("finished"):
        await asyncio.sleep(RECORD_POLL_S)
        found = await run_in_threadpool(runs.record, user, thread_id, run_id)
    return Response(status_code=202)


def _follow_record(
    record: dict[str, Any],
    services: Services,
    runs: RunManager,
    user_id: str,
    *,
    modes: list[str] | None,
    start: int,
    cancel_on_close: bool,
    wait_for_memory: bool,
) -> EventStream:
    """``join_stream`` of a run another process runs: its record is followed until the run
    ends, then ``metadata`` (id 0), the thread's final ``values`` or the ``error`` (id 1)
    and ``end`` (id 2) are sent; no token-by-token events (those stay in that process)."""
    run_id, thread_id = str(record["run_id"]), str(record["thread_id"])
    state = {"record": record}

    async def body() -> Any:
        if start <= 0:
            yield frame("metadata", dumps({"run_id": run_id, "attempt": 1}), "0")
        found, idle = record, 0.0
        while not found.get("finished"):
            await asyncio.sleep(RECORD_POLL_S)
            idle += RECORD_POLL_S
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield HEARTBEAT
            try:
                found = await run_in_threadpool(runs.record, user_id, thread_id, run_id)
            except NotFoundError:  # deleted under us (the thread, or forget-me)
                found = {
                    "finished": True,
                    "error": {
                        "error": "NotFoundError",
                        "message": f"Run {run_id!r} is gone: its thread was deleted.",
                    },
                }
            state["record"] = found
        if start <= 1:
            if found.get("error") is not None:
                yield frame("error", dumps(found["error"]), "1")
            elif modes is None or "values" in modes:
                values = await run_in_threadpool(thread_state, services.graph, user_id, thread_id)
                yield frame("values", dumps(values.values), "1")
        if wait_for_memory and not await _memory_written(services, user_id):
            yield _pending_event()
        if start <= 2:
            yield frame("end", b"null", "2")

    def on_close() -> None:
        if cancel_on_close and not state["record"].get("finished"):
            try:
                runs.request_cancel(user_id, run_id)
            except Exception:  # the reader is gone either way; the run ends on its own
                return

    return EventStream(body(), on_close=on_close)


# --- stateless runs: a thread of their own, deleted afterwards ----------------------------


@router.post("/runs/stream", response_class=EventStream, status_code=200, response_description=SSE)
async def stream_stateless(
    body: RunCreate,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait_for_memory: WaitForMemory = False,
) -> EventStream:
    """A turn on a new thread, streamed (the thread is deleted afterwards unless kept)."""
    run = await _start(body, principal, services, runs, None)
    return _stream(
        run,
        services,
        modes=None,
        start=0,
        cancel_on_close=body.on_disconnect == "cancel",
        wait_for_memory=wait_for_memory,
        headers=_location(run),
    )


@router.post("/runs/wait", responses=PENDING_DOC)
async def wait_stateless(
    body: RunCreate,
    request: Request,
    principal: Chat,
    services: Services,
    runs: Runs,
    wait_for_memory: WaitForMemory = False,
) -> Response:
    """A turn on a new thread; answers with its final values."""
    run = await _start(body, principal, services, runs, None)
    return await _result(
        run,
        request,
        services,
        cancel_on_disconnect=body.on_disconnect == "cancel",
        wait_for_memory=wait_for_memory,
        headers=_created_at(run),
    )


@router.post("/runs", response_model=RunOut)
async def create_stateless(
    body: RunCreate, principal: Chat, services: Services, runs: Runs
) -> JSONResponse:
    """A turn on a new thread, in the background."""
    run = await _start(body, principal, services, runs, None)
    return JSONResponse(run.public(), headers=_created_at(run))


# --- the one assistant ----------------------------------------------------------------


@router.get("/assistants/{assistant_id}", response_model=AssistantOut, tags=["assistants"])
async def get_assistant(assistant_id: str, _: Chat) -> Any:
    """The assistant ``agent``; any other id is not found."""
    require_assistant(assistant_id)
    return AGENT


@router.post("/assistants/search", response_model=list[AssistantOut], tags=["assistants"])
async def search_assistants(_: Chat, body: Annotated[AssistantSearch | None, Body()] = None) -> Any:
    """The one assistant, if it matches the search."""
    query = body or AssistantSearch.model_validate({})
    matches = (
        query.graph_id in (None, ASSISTANT_ID)
        and query.name in (None, ASSISTANT_ID)
        and all(AGENT["metadata"].get(k) == v for k, v in (query.metadata or {}).items())
        and query.offset == 0
    )
    return [AGENT] if matches else []
