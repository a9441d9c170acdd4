"""The user's threads: each with its extraction status, and its transcript."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from langchain_core.messages import BaseMessage

from memshelf.agent.graph import memory_writer
from memshelf.errors import NotFoundError
from memshelf.ops import memories as ops
from memshelf.ops.threads import MAX_SEARCH_LIMIT, search_threads, thread_messages
from memshelf.ui.render import render
from memshelf.ui.session import Session, needs, services

router = APIRouter()

ROLES = {"human": "You", "ai": "Assistant", "system": "System", "tool": "Tool"}


def _line(message: BaseMessage) -> dict[str, Any]:
    return {
        "role": ROLES.get(message.type, message.type),
        "type": message.type,
        "text": message.text,
        "id": message.id,
    }


@router.get("/threads")
def threads_page(request: Request, viewer: Session) -> Response:
    """The user's conversations, most recently active first, with extraction status."""
    needs(viewer, "chat")
    state = services(request)
    writer = memory_writer(state.graph)
    found = search_threads(state.store, viewer.user_id, limit=MAX_SEARCH_LIMIT)
    rows = [
        {
            "info": t,
            "status": ops.extraction_status(state.store, writer, viewer.user_id, t.thread_id),
        }
        for t in found
    ]
    return render(request, "threads.html", viewer, rows=rows)


@router.get("/threads/{thread_id}")
def thread_page(request: Request, viewer: Session, thread_id: str) -> Response:
    """One thread's transcript and where memory extraction stands for it."""
    needs(viewer, "chat")
    state = services(request)
    status = ops.extraction_status(
        state.store, memory_writer(state.graph), viewer.user_id, thread_id
    )
    try:
        messages = thread_messages(state.checkpointer, viewer.user_id, thread_id)
    except NotFoundError:  # registered, no turn yet
        messages = []
    return render(
        request,
        "thread.html",
        viewer,
        thread_id=thread_id,
        status=status,
        lines=[_line(m) for m in messages],
    )
