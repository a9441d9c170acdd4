"""Every change to a memory is an event kept beside it: add, update, supersede, edit,
delete, restore; each with the value before and after, who made it (extraction model,
tool, CLI, API) and the thread and message that caused it.

Events live in ``("history", <user>)`` through plain ``BaseStore`` calls, so history
works on any LangGraph store, and they never expire on their own (forgetting a user
removes them).
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.store.base import BaseStore

from memshelf.memory.types import Provenance, now_iso
from memshelf.namespaces import history_namespace

_PAGE = 500


def record(
    store: BaseStore,
    user_id: str,
    memory_id: str,
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    provenance: Provenance,
) -> None:
    """Append one event to ``memory_id``'s history."""
    event = {
        "memory_id": memory_id,
        "op": op,
        "version": (after or before or {}).get("version", 1),
        "before": before,
        "after": after,
        "actor": provenance.source,
        "model": provenance.model,
        "thread_id": provenance.thread_id,
        "message_id": provenance.message_id,
        "at": now_iso(),
    }
    key = f"{memory_id}~{time.time_ns():020d}"
    store.put(history_namespace(user_id), key, event, index=False, ttl=None)


def history_keys(store: BaseStore, user_id: str, memory_id: str) -> list[str]:
    """The store keys of ``memory_id``'s events."""
    return [key for key, _ in _events(store, user_id, memory_id)]


def history(store: BaseStore, user_id: str, memory_id: str) -> list[dict[str, Any]]:
    """``memory_id``'s events, oldest first (empty if the user has no such memory)."""
    return [value for _, value in _events(store, user_id, memory_id)]


def _events(store: BaseStore, user_id: str, memory_id: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    while True:
        page = store.search(
            history_namespace(user_id),
            filter={"memory_id": memory_id},
            limit=_PAGE,
            offset=len(events),
            refresh_ttl=False,
        )
        events += [(item.key, item.value) for item in page]
        if len(page) < _PAGE:
            return sorted(events, key=lambda e: e[0])
