"""Forgetting: by a query (preview first, then confirm), and everything about the user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from memshelf.ops import memories as ops
from memshelf.service import _runs
from memshelf.ui.render import render
from memshelf.ui.session import Posted, Session, needs, services

router = APIRouter()

CONFIRM_WORD = "FORGET"
Query = Annotated[str, Form(min_length=1, max_length=4000)]


@router.get("/forget")
def forget_page(request: Request, viewer: Session, query: str = "") -> Response:
    """The forget page; with ``query``, a preview of what forgetting it would delete."""
    needs(viewer, "memories:read")
    query = query.strip()[:4000]
    preview = (
        ops.forget_memories(services(request).store, viewer.user_id, query, dry_run=True)
        if query
        else None
    )
    return render(
        request, "forget.html", viewer, query=query, preview=preview, confirm_word=CONFIRM_WORD
    )


@router.post("/forget")
def forget_by_query(
    request: Request,
    viewer: Posted,
    query: Query,
    keys: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Forget what the preview showed. Should the shelf have changed since (so the same
    query now names other memories), nothing is deleted and the new preview is shown."""
    needs(viewer, "memories:write")
    store = services(request).store
    now = ops.forget_memories(store, viewer.user_id, query, dry_run=True)
    if sorted(f.key for f in now) != sorted(keys or []):
        return render(
            request,
            "forget.html",
            viewer,
            status_code=409,
            query=query,
            preview=now,
            confirm_word=CONFIRM_WORD,
            notice="Your memories changed since the preview; check this one and confirm again.",
        )
    gone = ops.forget_memories(store, viewer.user_id, query, source="ui")
    return render(
        request,
        "forget.html",
        viewer,
        query="",
        preview=None,
        confirm_word=CONFIRM_WORD,
        notice=f"Forgot {len(gone)} memor{'y' if len(gone) == 1 else 'ies'} and their history.",
    )


@router.post("/forget-me")
def forget_me(
    request: Request, viewer: Posted, confirm: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """Delete every memory, history event and thread of the user, after they typed the
    confirmation word. Their runs stop first, as for the API's ``/v1/me/forget``."""
    needs(viewer, "memories:write")
    if confirm.strip() != CONFIRM_WORD:  # the form again, saying what to type
        return render(
            request,
            "forget.html",
            viewer,
            status_code=422,
            query="",
            preview=None,
            confirm_word=CONFIRM_WORD,
            confirm_error=f"Type {CONFIRM_WORD} in capitals to confirm (you typed "
            f"{confirm.strip()[:20]!r}); nothing was deleted.",
        )
    report = _runs.forget_user(services(request), viewer.user_id)
    return render(request, "forgotten.html", viewer, report=report)
