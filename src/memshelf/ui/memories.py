"""Memory pages: the list with search and filters, one memory's provenance and history
(edit, restore, forget), and the export. Each action is one :mod:`memshelf.ops` call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from langgraph.store.base import Item

from memshelf.errors import InvalidInputError, NotFoundError
from memshelf.memory.types import KINDS
from memshelf.ops import memories as ops
from memshelf.ui.render import render, segment
from memshelf.ui.session import Posted, Session, Viewer, base_path, needs, services

router = APIRouter()

PAGE_SIZE = 50
SEARCH_K = 20
# Hybrid scores below this are noise, not matches: with the bundled all-MiniLM-L6-v2,
# unrelated memories scored up to 0.18 and related ones 0.25 or more (see
# benchmarks/ui_search_floor.py). The API and MCP search still return all k.
SEARCH_MIN_SCORE = 0.2
# "expired": the fact's own validity window has ended (``valid_to`` in the past).
STATUS_CHOICES = ("current", "superseded", "expired", "all")
NOTICES = {
    "restored": "Restored: that version is current again (recorded as a new version).",
    "edited": "Saved: the new wording is a new version; the old one stays in the history.",
    "forgotten": "Forgotten: the memory and the history holding its text are deleted.",
}


@dataclass(frozen=True)
class Filters:
    """The list page's query, read leniently: an empty field means no filter."""

    q: str
    kind: str
    status: str
    created_from: str
    created_to: str
    offset: int


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{field} {value[:40]!r} is not a date; use YYYY-MM-DD (or leave it empty)."
        ) from None


def _midnight(day: date | None, plus_days: int = 0) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=plus_days), datetime.min.time(), UTC)


def _expired(value: dict[str, Any], today: str) -> bool:
    valid_to = value.get("valid_to")
    return isinstance(valid_to, str) and bool(valid_to) and valid_to[:10] < today


def _listing(request: Request, user_id: str, f: Filters) -> dict[str, Any]:
    """What the results section shows: a search (by meaning, current memories) or a
    filtered, paged listing."""
    store = services(request).store
    kind = f.kind or None
    if f.q:
        found = [
            r
            for r in ops.search_memories(store, user_id, f.q, k=SEARCH_K)
            if kind is None or r.kind == kind
        ]
        rows = [
            {"key": r.key, "text": r.text, "kind": r.kind, "status": "active", "score": r.score}
            for r in found
            if r.score is None or r.score >= SEARCH_MIN_SCORE
        ]
        return {
            "rows": rows,
            "total": len(rows),
            "searched": True,
            "hidden": len(found) - len(rows),
            "next_offset": None,
        }
    if f.status not in STATUS_CHOICES:
        raise InvalidInputError(f"Unknown status {f.status!r}; use one of {STATUS_CHOICES}.")
    created_after = _midnight(_day(f.created_from, "'Created from'"))
    created_before = _midnight(_day(f.created_to, "'Created to'"), plus_days=1)
    expired = f.status == "expired"
    page = ops.list_memories(
        store,
        user_id,
        kind=kind,
        status="all" if expired else f.status,
        created_after=created_after,
        created_before=created_before,
        limit=None if expired else PAGE_SIZE,
        offset=0 if expired else f.offset,
    )
    items: list[Item] = page.items
    total, next_offset = page.total, page.next_offset
    if expired:
        today = datetime.now(UTC).date().isoformat()
        matching = [i for i in items if _expired(i.value, today)]
        total = len(matching)
        end = f.offset + PAGE_SIZE
        items = matching[f.offset : end]
        next_offset = end if end < total else None
    rows = [{**ops.describe(i), "score": None} for i in items]
    return {"rows": rows, "total": total, "searched": False, "next_offset": next_offset}


@router.get("/memories")
def memories_page(
    request: Request,
    viewer: Session,
    q: str = "",
    kind: str = "",
    status: str = "current",
    created_from: str = "",
    created_to: str = "",
    offset: int = 0,
    notice: str = "",
) -> Response:
    """The user's memories: search by meaning, or browse by kind, status and date. A key
    that may only chat (the login lands here) is sent on to its threads."""
    if not viewer.can("memories:read") and viewer.can("chat"):
        return RedirectResponse(f"{base_path(request)}/threads", status_code=303)
    needs(viewer, "memories:read")
    filters = Filters(q.strip()[:4000], kind, status, created_from, created_to, max(offset, 0))
    error: str | None = None
    try:
        listing = _listing(request, viewer.user_id, filters)
    except InvalidInputError as exc:
        error, listing = str(exc), {"rows": [], "total": 0, "searched": bool(filters.q)}
        listing["next_offset"] = None
    return render(
        request,
        "memories.html",
        viewer,
        status_code=422 if error else 200,
        f=filters,
        kinds=KINDS,
        statuses=STATUS_CHOICES,
        error=error,
        notice=NOTICES.get(notice),
        **listing,
    )


def _versions(events: list[dict[str, Any]]) -> list[int]:
    """Every version a snapshot of which the history keeps (what restore accepts)."""
    found = {
        v["version"]
        for e in events
        for v in (e.get("before"), e.get("after"))
        if isinstance(v, dict) and isinstance(v.get("version"), int)
    }
    return sorted(found)


def _origin(events: list[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """Where the memory first came from: the first version's provenance (an edit or a
    restore replaces the current one with the hand that made it), else the first event's
    actor, else the current provenance (a memory with no history)."""
    if not events:
        return current
    first = events[0]
    after = first.get("after")
    kept = after.get("provenance") if isinstance(after, dict) else None
    if isinstance(kept, dict):
        return kept
    return {
        "source": first.get("actor"),
        "thread_id": first.get("thread_id"),
        "message_id": first.get("message_id"),
        "at": first.get("at"),
        "model": first.get("model"),
    }


def _last_change(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest change after the first version (None if it was never changed)."""
    if len(events) < 2:
        return None
    last = events[-1]
    return {"op": last.get("op"), "by": last.get("actor") or "unknown", "at": last.get("at")}


def _memory(request: Request, viewer: Viewer, key: str) -> tuple[dict[str, Any], list[Any]]:
    store = services(request).store
    memory = ops.describe(ops.get_memory(store, viewer.user_id, key))
    try:
        events = ops.memory_history(store, viewer.user_id, key)
    except NotFoundError:  # a memory put straight into the store has no history yet
        events = []
    return memory, events


@router.get("/memories/{key}")
def memory_page(request: Request, viewer: Session, key: str, notice: str = "") -> Response:
    """One memory: its text, provenance and history, with edit, restore and forget."""
    needs(viewer, "memories:read")
    memory, events = _memory(request, viewer, key)
    provenance = memory["value"].get("provenance")
    return render(
        request,
        "memory.html",
        viewer,
        m=memory,
        provenance=_origin(events, provenance if isinstance(provenance, dict) else {}),
        last_change=_last_change(events),
        events=events,
        versions=[v for v in _versions(events) if v != memory["version"]],
        notice=NOTICES.get(notice),
    )


@router.get("/memories/{key}/forget")
def confirm_forget_one(request: Request, viewer: Session, key: str) -> Response:
    """Ask before forgetting one memory: the delete cannot be undone."""
    needs(viewer, "memories:write")
    memory, events = _memory(request, viewer, key)
    return render(request, "memory_forget.html", viewer, m=memory, events=len(events))


def _back_to(request: Request, key: str, notice: str) -> Response:
    target = f"{base_path(request)}/memories/{segment(key)}?notice={notice}"
    return RedirectResponse(target, status_code=303)


@router.post("/memories/{key}/edit")
def edit(
    request: Request, viewer: Posted, key: str, text: Annotated[str, Form(max_length=2000)]
) -> Response:
    needs(viewer, "memories:write")
    ops.edit_memory(services(request).store, viewer.user_id, key, text, source="ui")
    return _back_to(request, key, "edited")


@router.post("/memories/{key}/restore")
def restore(
    request: Request, viewer: Posted, key: str, version: Annotated[int, Form(ge=1)]
) -> Response:
    needs(viewer, "memories:write")
    ops.restore_memory(services(request).store, viewer.user_id, key, version, source="ui")
    return _back_to(request, key, "restored")


@router.post("/memories/{key}/forget")
def forget_one(request: Request, viewer: Posted, key: str) -> Response:
    """Forget exactly this memory (and the history holding its text)."""
    needs(viewer, "memories:write")
    ops.delete_memory(services(request).store, viewer.user_id, key, source="ui")
    return RedirectResponse(f"{base_path(request)}/memories?notice=forgotten", status_code=303)


@router.get("/export")
def export(request: Request, viewer: Session) -> Response:
    """Download the whole shelf as JSON (superseded memories and history included; the
    input `memshelf memories import` and the API's import take)."""
    needs(viewer, "memories:read")
    records = ops.export_memories(services(request).store, viewer.user_id)
    body = json.dumps(records, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="memshelf-export.json"'},
    )
