"""A user's conversations: create, list, search, read, update, delete, and run a turn.

Every function takes the authenticated ``user_id``; thread ids are the caller's names,
scoped per owner, so another user's thread is simply not found (the same error, word for
word, as a thread nobody has).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langgraph.store.base import BaseStore

from memshelf.agent.nodes import check_message
from memshelf.config import Settings
from memshelf.errors import InvalidInputError, NotFoundError
from memshelf.threads import (
    OWNER_KEY,
    OwnedCheckpointer,
    ThreadInfo,
    list_threads,
    register_thread,
    registered_thread,
)

__all__ = [
    "GRAPH_STREAM_MODES",
    "ThreadInfo",
    "ThreadState",
    "create_thread",
    "delete_thread",
    "get_thread",
    "list_threads",
    "open_threads",
    "require_thread",
    "search_threads",
    "stream_turn",
    "thread_history",
    "thread_messages",
    "thread_state",
    "turn_messages",
    "update_thread",
]

IfExists = Literal["raise", "do_nothing"]
GRAPH_STREAM_MODES = ("values", "updates", "messages", "custom")
MAX_SEARCH_LIMIT = 1000
_FILTER_KEY = re.compile(r"[A-Za-z0-9_.-]{1,256}")  # what checkpointers accept


@contextmanager
def open_threads(settings: Settings) -> Iterator[tuple[BaseStore, OwnedCheckpointer]]:
    """The store and the owner-scoped checkpointer the agent uses, without a chat model."""
    from memshelf.agent.graph import close_checkpointer, default_checkpointer
    from memshelf.stores import open_store

    with open_store(settings=settings) as store:
        checkpointer = default_checkpointer(settings, store)
        try:
            yield store, checkpointer
        finally:
            close_checkpointer(checkpointer)


def _not_found(user_id: str, thread_id: str) -> NotFoundError:
    return NotFoundError(
        f"User {user_id!r} has no thread {thread_id!r}. "
        f"`memshelf threads list --user {user_id}` lists theirs."
    )


def _config(user_id: str, thread_id: str, **extra: Any) -> Any:
    return {"configurable": {"user_id": user_id, "thread_id": thread_id, **extra}}


def thread_messages(
    checkpointer: OwnedCheckpointer, user_id: str, thread_id: str
) -> list[BaseMessage]:
    """The messages of one of ``user_id``'s threads."""
    found = checkpointer.get_tuple(_config(user_id, thread_id))
    if found is None:
        raise _not_found(user_id, thread_id)
    return list(found.checkpoint["channel_values"].get("messages") or [])


def require_thread(checkpointer: OwnedCheckpointer, user_id: str, thread_id: str) -> ThreadInfo:
    """One of ``user_id``'s threads: created empty (registry only) or with turns in it.

    A thread from before per-user threads is adopted by its one writer on this first
    look (the checkpointer registers it), as on any other first use.
    """
    store = checkpointer.store
    if store is None:
        raise InvalidInputError("This checkpointer keeps no thread registry; pass it a store.")
    found = registered_thread(store, user_id, thread_id)
    if found is not None:
        return found
    if checkpointer.get_tuple(_config(user_id, thread_id)) is None:
        raise _not_found(user_id, thread_id)
    # turns written without the registry (a graph compiled without the store): enter it now
    return registered_thread(store, user_id, thread_id) or register_thread(
        store, user_id, thread_id
    )


def create_thread(
    checkpointer: OwnedCheckpointer,
    user_id: str,
    thread_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    if_exists: IfExists = "raise",
) -> tuple[ThreadInfo, bool]:
    """A new empty thread for ``user_id`` (a random id unless named), and whether it is
    new: with ``if_exists="do_nothing"`` an existing one is returned as it is; with
    ``"raise"`` the caller reports the conflict. Another user's thread of the same name
    is a different thread and never conflicts."""
    store = checkpointer.store
    if store is None:
        raise InvalidInputError("This checkpointer keeps no thread registry; pass it a store.")
    name = thread_id if thread_id is not None else str(uuid.uuid4())
    try:
        return require_thread(checkpointer, user_id, name), False
    except NotFoundError:
        return register_thread(store, user_id, name, metadata), True


def update_thread(
    checkpointer: OwnedCheckpointer, user_id: str, thread_id: str, metadata: Mapping[str, Any]
) -> ThreadInfo:
    """Merge ``metadata`` into one of ``user_id``'s threads' metadata."""
    require_thread(checkpointer, user_id, thread_id)
    assert checkpointer.store is not None  # require_thread checked it
    return register_thread(checkpointer.store, user_id, thread_id, metadata, merge=True)


def search_threads(
    store: BaseStore,
    user_id: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    ids: Sequence[str] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[ThreadInfo]:
    """``user_id``'s threads whose metadata holds every pair in ``metadata`` (and whose id
    is in ``ids``), most recently active first."""
    if not 1 <= limit <= MAX_SEARCH_LIMIT or offset < 0:
        raise InvalidInputError(
            f"limit must be 1..{MAX_SEARCH_LIMIT} and offset at least 0 "
            f"(got limit={limit}, offset={offset})."
        )
    wanted = dict(metadata or {})
    found = [
        t
        for t in list_threads(store, user_id)
        if all(k in t.metadata and t.metadata[k] == v for k, v in wanted.items())
        and (ids is None or t.thread_id in ids)
    ]
    return found[offset : offset + limit]


def delete_thread(checkpointer: OwnedCheckpointer, user_id: str, thread_id: str) -> None:
    """Delete one of ``user_id``'s threads (its every checkpoint and the registry entry),
    also one created empty that never had a turn."""
    store = checkpointer.store
    registered = store is not None and registered_thread(store, user_id, thread_id) is not None
    if not checkpointer.delete_user_thread(user_id, thread_id) and not registered:
        raise _not_found(user_id, thread_id)


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadState:
    """A thread's state at one checkpoint, in the terms of LangGraph's server API."""

    values: dict[str, Any]
    next: list[str]
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str | None
    parent_checkpoint: dict[str, Any] | None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    interrupts: list[Any] = field(default_factory=list)


def _checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    conf = config.get("configurable") or {}
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf.get("checkpoint_id"),
        "checkpoint_map": conf.get("checkpoint_map"),
    }


def _state(snapshot: Any, thread_id: str) -> ThreadState:
    tasks = [
        {
            "id": t.id,
            "name": t.name,
            "error": None if t.error is None else type(t.error).__name__,
            "interrupts": list(t.interrupts),
            "checkpoint": None,
            "state": None,
            "result": t.result,
        }
        for t in snapshot.tasks
    ]
    metadata = {k: v for k, v in (snapshot.metadata or {}).items() if k != OWNER_KEY}
    empty = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None}
    return ThreadState(
        values=dict(snapshot.values or {}),
        next=list(snapshot.next),
        checkpoint=_checkpoint(snapshot.config) or {**empty, "checkpoint_map": None},
        metadata=metadata,
        created_at=snapshot.created_at,
        parent_checkpoint=_checkpoint(snapshot.parent_config),
        tasks=tasks,
        interrupts=list(getattr(snapshot, "interrupts", ()) or ()),
    )


def _owned_graph(graph: Any) -> OwnedCheckpointer:
    checkpointer = graph.checkpointer
    if not isinstance(checkpointer, OwnedCheckpointer):
        raise InvalidInputError("This graph's thread memory is not owner-scoped; use build_agent.")
    return checkpointer


def thread_state(graph: Any, user_id: str, thread_id: str) -> ThreadState:
    """The current state of one of ``user_id``'s threads (empty values before its first turn)."""
    require_thread(_owned_graph(graph), user_id, thread_id)
    return _state(graph.get_state(_config(user_id, thread_id)), thread_id)


def get_thread(graph: Any, user_id: str, thread_id: str) -> tuple[ThreadInfo, dict[str, Any]]:
    """One of ``user_id``'s threads and its current values."""
    info = require_thread(_owned_graph(graph), user_id, thread_id)
    return info, dict(graph.get_state(_config(user_id, thread_id)).values or {})


def thread_history(
    graph: Any,
    user_id: str,
    thread_id: str,
    *,
    limit: int = 10,
    before: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[ThreadState]:
    """The thread's states, newest first (``before``: older than that checkpoint id)."""
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise InvalidInputError(f"limit must be 1..{MAX_SEARCH_LIMIT} (got {limit}).")
    if before is not None and not isinstance(before, str):
        raise InvalidInputError(
            f"'before' must be a checkpoint id (a string) or {{'checkpoint_id': <id>}}, "
            f"not {type(before).__name__}."
        )
    for key in metadata or {}:
        if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):
            raise InvalidInputError(
                f"Metadata filter key {str(key)[:80]!r} is not usable: keys may hold only "
                "letters, digits, '_', '.' and '-'."
            )
    require_thread(_owned_graph(graph), user_id, thread_id)
    older = _config(user_id, thread_id, checkpoint_id=before) if before else None
    found = graph.get_state_history(
        _config(user_id, thread_id), filter=dict(metadata or {}) or None, before=older, limit=limit
    )
    try:
        return [_state(s, thread_id) for s in found]
    except ValueError as exc:  # the checkpointer names a filter it cannot use
        raise InvalidInputError(f"Cannot filter this history: {exc}") from None


# --- a turn -----------------------------------------------------------------------------


def turn_messages(messages: Sequence[Any], max_chars: int) -> list[BaseMessage]:
    """A turn's input as messages: LangGraph's shapes (``{"role": "user", "content": ...}``,
    ``{"type": "human", ...}``, strings), ending with the user's message, each user message
    within ``max_chars`` (refused before it reaches the thread's history)."""
    if not messages:
        raise InvalidInputError(
            'A turn needs a user message: input={"messages": [{"role": "user", "content": "..."}]}.'
        )
    try:
        converted = convert_to_messages(list(messages))
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise InvalidInputError(
            f"Unreadable input message ({exc}). Send "
            '{"role": "user" | "assistant" | "system", "content": "..."} objects.'
        ) from None
    if not isinstance(converted[-1], HumanMessage):
        raise InvalidInputError(
            f"The last input message must be the user's (role 'user'), not {converted[-1].type!r}."
        )
    for message in converted:
        if isinstance(message, HumanMessage):
            check_message(str(message.text), max_chars)
    return converted


def stream_turn(
    graph: Any,
    user_id: str,
    thread_id: str,
    messages: Sequence[BaseMessage],
    modes: Sequence[str] = ("values",),
    *,
    stop: threading.Event | None = None,
    recursion_limit: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """Run one turn of the agent on one of ``user_id``'s threads, yielding LangGraph's
    ``(mode, chunk)`` pairs for ``modes`` (of :data:`GRAPH_STREAM_MODES`). Setting
    ``stop`` ends the run after the chunk in hand (the thread keeps the steps done)."""
    unknown = set(modes) - set(GRAPH_STREAM_MODES)
    if unknown or not modes:
        raise InvalidInputError(
            f"Unknown stream modes {sorted(unknown)}; use {', '.join(GRAPH_STREAM_MODES)}."
        )
    config = _config(user_id, thread_id)
    if recursion_limit is not None:
        config["recursion_limit"] = recursion_limit
    chunks = graph.stream({"messages": list(messages)}, config, stream_mode=list(modes))
    try:
        for mode, chunk in chunks:
            yield mode, chunk
            if stop is not None and stop.is_set():
                return
    finally:
        chunks.close()
