"""``/v1``: memshelf's own routes over the caller's memories and threads.

The owner is the API key's user and nobody else: no path, body or query carries a user
id. Each route translates HTTP to one :mod:`memshelf.ops.memories` call (the functions
the CLI calls) and back; another user's memory or thread answers like a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field, StrictBool, field_validator

from memshelf.agent.graph import memory_writer
from memshelf.memory.types import KINDS
from memshelf.ops import memories as ops
from memshelf.ops.threads import list_threads
from memshelf.service import _runs
from memshelf.service.auth import Chat, MemoriesRead, MemoriesWrite, Services

router = APIRouter(prefix="/v1", tags=["memories"])

Kind = Literal["profile", "preference", "fact", "event", "plan", "relationship", "instruction"]
assert set(get_args(Kind)) == set(KINDS), "Kind must list memshelf.memory.types.KINDS"
MemoryKey = Annotated[str, Path(min_length=1, max_length=1024, description="The memory's key.")]
FactText = Annotated[str, Field(min_length=1, max_length=2000)]
WAIT_S = 30.0
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "You have no such memory (another user's looks the same)."}
}
WaitForMemory = Annotated[
    bool,
    Query(
        description="First wait (up to 30 s) until the memories of your finished turns "
        "are written: read-your-writes. If the wait runs out, the answer carries the "
        "header Memshelf-Memory-Pending: true."
    ),
]
MEMORY_PENDING = "Memshelf-Memory-Pending"
PENDING_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            MEMORY_PENDING: {
                "schema": {"type": "string", "enum": ["true"]},
                "description": "Sent when wait_for_memory=true ran out before every memory "
                "of your finished turns was written: the answer may lack the newest.",
            }
        }
    }
}


class Memory(BaseModel):
    key: str
    text: str | None
    kind: str
    status: str = Field(description="active, or superseded (kept, out of recall).")
    version: int
    pinned: bool
    created_at: datetime
    updated_at: datetime
    value: dict[str, Any] = Field(description="Everything stored: provenance, dates, status.")


class MemoryPage(BaseModel):
    items: list[Memory]
    total: int = Field(description="Memories matching the filters, on every page together.")
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null: last page.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=100)


class Found(BaseModel):
    key: str
    text: str
    score: float | None
    kind: str
    valid_from: str | None = None
    valid_to: str | None = None


class NewMemory(BaseModel):
    text: FactText
    kind: Kind = "fact"
    pinned: bool = Field(default=False, description="Never expires.")


class MemoryEdit(BaseModel):
    text: FactText


class Restore(BaseModel):
    version: int = Field(ge=1, description="A version listed by the memory's history.")


class HistoryEvent(BaseModel):
    memory_id: str
    op: str = Field(description="add, update, supersede, edit, delete, restore, import, put")
    version: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    actor: str | None = Field(default=None, description="extraction, tool, cli, api, import")
    model: str | None = None
    thread_id: str | None = None
    message_id: str | None = None
    at: str


class ForgetRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000, description="A key or a description.")
    dry_run: bool = Field(default=False, description="Only list what would be forgotten.")


class Forgotten(BaseModel):
    key: str
    text: str


class ForgetReport(BaseModel):
    dry_run: bool
    forgotten: list[Forgotten]


class ForgetMe(BaseModel):
    confirm: StrictBool = Field(
        description="Must be true: deletes every memory, its history and every thread of yours."
    )

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, confirm: bool) -> bool:
        if confirm is not True:
            raise ValueError(
                "Set confirm to true to delete everything memshelf holds about you; "
                "it cannot be undone."
            )
        return confirm


class ForgetMeReport(BaseModel):
    memories_and_history: int = Field(description="Store items removed.")
    threads: int


class ExportRecord(BaseModel):
    key: str | None = None
    value: dict[str, Any]
    created_at: str | None = None
    updated_at: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class Imported(BaseModel):
    imported: int


class ThreadOut(BaseModel):
    thread_id: str
    created_at: str
    updated_at: str


class Outcome(BaseModel):
    op: str = Field(description="ADD, UPDATE, SUPERSEDE or NOOP")
    text: str = Field(
        description="The memory's text now (empty once it is gone): a status keeps only "
        "op and key, so a forgotten fact's words live nowhere but in what forget deletes."
    )
    key: str | None
    target: str | None = None


class Extraction(BaseModel):
    thread_id: str
    state: Literal["idle", "pending", "running", "done", "failed"]
    error: str | None
    attempts: int
    done_messages: int = Field(description="Messages of this thread extracted so far.")
    outcomes: list[Outcome] = Field(description="What the last finished batch did.")


def _settle(services: Services, user_id: str, wait: bool, response: Response) -> None:
    """Read-your-writes on request; a wait that ran out is said in a header."""
    if wait and not ops.wait_for_memories(memory_writer(services.graph), user_id, timeout=WAIT_S):
        response.headers[MEMORY_PENDING] = "true"


@router.get("/memories", response_model=MemoryPage, responses=PENDING_DOC)
def list_memories(
    services: Services,
    principal: MemoriesRead,
    response: Response,
    kind: Kind | None = None,
    status: Literal["current", "superseded", "all"] = "current",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    wait_for_memory: WaitForMemory = False,
) -> dict[str, Any]:
    """Your memories, most recently changed first; dates: ``after`` inclusive,
    ``before`` exclusive, ISO 8601 (no zone: UTC)."""
    _settle(services, principal.user_id, wait_for_memory, response)
    page = ops.list_memories(
        services.store,
        principal.user_id,
        kind=kind,
        status=status,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
        limit=limit,
        offset=offset,
    )
    return {
        "items": [ops.describe(i) for i in page.items],
        "total": page.total,
        "offset": page.offset,
        "next_offset": page.next_offset,
    }


@router.post("/memories/search", response_model=list[Found], responses=PENDING_DOC)
def search_memories(
    body: SearchRequest,
    services: Services,
    principal: MemoriesRead,
    response: Response,
    wait_for_memory: WaitForMemory = False,
) -> list[dict[str, Any]]:
    """Your current memories closest to ``query`` by meaning, keyword and recency."""
    _settle(services, principal.user_id, wait_for_memory, response)
    found = ops.search_memories(services.store, principal.user_id, body.query, k=body.k)
    return [
        {
            "key": f.key,
            "text": f.text,
            "score": f.score,
            "kind": f.kind,
            "valid_from": f.valid_from,
            "valid_to": f.valid_to,
        }
        for f in found
    ]


@router.post("/memories/forget", response_model=ForgetReport)
def forget_memories(body: ForgetRequest, services: Services, principal: MemoriesWrite) -> Any:
    """Forget the memory ``query`` names and its rewordings, with their history
    (``dry_run``: only list them)."""
    found = ops.forget_memories(services.store, principal.user_id, body.query, dry_run=body.dry_run)
    return {"dry_run": body.dry_run, "forgotten": [{"key": f.key, "text": f.text} for f in found]}


@router.get("/memories/export", response_model=list[ExportRecord])
def export_memories(services: Services, principal: MemoriesRead) -> Any:
    """Your whole shelf, superseded memories and history included (input for import)."""
    return ops.export_memories(services.store, principal.user_id)


@router.post("/memories/import", response_model=Imported)
def import_memories(
    records: Annotated[list[ExportRecord], Body(max_length=10_000)],
    services: Services,
    principal: MemoriesWrite,
) -> Any:
    """Load exported records onto your shelf, all or nothing: a bad record is named in
    a 422 and nothing is written."""
    raw = [r.model_dump(exclude_none=True) for r in records]
    return {"imported": ops.import_memories(services.store, principal.user_id, raw)}


@router.post("/memories", response_model=Memory, status_code=201)
def add_memory(body: NewMemory, services: Services, principal: MemoriesWrite) -> Any:
    """Save a fact through the engine (guard, consolidation, history; source ``api``);
    answers with the memory it lives in (an existing one if it was already known)."""
    item = ops.add_memory(
        services.store, principal.user_id, body.text, kind=body.kind, pinned=body.pinned
    )
    return ops.describe(item)


@router.get("/memories/{key}", response_model=Memory, responses=NOT_FOUND)
def get_memory(key: MemoryKey, services: Services, principal: MemoriesRead) -> Any:
    """One of your memories."""
    return ops.describe(ops.get_memory(services.store, principal.user_id, key))


@router.patch("/memories/{key}", response_model=Memory, responses=NOT_FOUND)
def edit_memory(
    key: MemoryKey, body: MemoryEdit, services: Services, principal: MemoriesWrite
) -> Any:
    """Reword a memory: a new version; the old wording stays in its history."""
    return ops.describe(ops.edit_memory(services.store, principal.user_id, key, body.text))


@router.delete("/memories/{key}", status_code=204, response_class=Response, responses=NOT_FOUND)
def delete_memory(key: MemoryKey, services: Services, principal: MemoriesWrite) -> None:
    """Delete a memory and the history holding its text (it cannot be restored)."""
    ops.delete_memory(services.store, principal.user_id, key)


@router.get("/memories/{key}/history", response_model=list[HistoryEvent], responses=NOT_FOUND)
def memory_history(key: MemoryKey, services: Services, principal: MemoriesRead) -> Any:
    """Every change made to a memory, oldest first."""
    return ops.memory_history(services.store, principal.user_id, key)


@router.post("/memories/{key}/restore", response_model=Memory, responses=NOT_FOUND)
def restore_memory(
    key: MemoryKey, body: Restore, services: Services, principal: MemoriesWrite
) -> Any:
    """Make an earlier version current again (recorded as a new version)."""
    item = ops.restore_memory(services.store, principal.user_id, key, body.version)
    return ops.describe(item)


@router.post("/me/forget", response_model=ForgetMeReport)
def forget_me(body: ForgetMe, services: Services, principal: MemoriesWrite) -> Any:
    """Delete everything about you: memories, history, threads (pending memories are
    written first, so none lands afterwards). Your runs in this process are stopped first
    and none starts meanwhile; a run that does not stop in time, or one in another service
    process, answers 409. Needs ``{"confirm": true}``."""
    report = _runs.forget_user(services, principal.user_id)
    return {"memories_and_history": report.memories_and_history, "threads": report.threads}


@router.get("/threads", response_model=list[ThreadOut])
def threads(services: Services, principal: Chat) -> Any:
    """Your conversations, most recently active first."""
    return [t._asdict() for t in list_threads(services.store, principal.user_id)]


@router.get(
    "/threads/{thread_id}/extraction",
    response_model=Extraction,
    responses={404: {"description": "You have no such thread."}},
)
def extraction(
    thread_id: Annotated[str, Path(min_length=1, max_length=256)],
    services: Services,
    principal: MemoriesRead,
) -> Any:
    """Where memory extraction stands for one of your threads."""
    status = ops.extraction_status(
        services.store, memory_writer(services.graph), principal.user_id, thread_id
    )
    return {
        "thread_id": thread_id,
        "state": status.state,
        "error": status.error,
        "attempts": status.attempts,
        "done_messages": status.done_messages,
        "outcomes": [
            {"op": o.op, "text": o.text, "key": o.key, "target": o.target} for o in status.outcomes
        ],
    }
