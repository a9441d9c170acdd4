"""A user's conversations: list, read, delete. Another user's thread is simply not found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.errors import NotFoundError
from memshelf.threads import OwnedCheckpointer, ThreadInfo, list_threads

__all__ = ["ThreadInfo", "delete_thread", "list_threads", "open_threads", "thread_messages"]


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


def thread_messages(
    checkpointer: OwnedCheckpointer, user_id: str, thread_id: str
) -> list[BaseMessage]:
    """The messages of one of ``user_id``'s threads."""
    config: Any = {"configurable": {"user_id": user_id, "thread_id": thread_id}}
    found = checkpointer.get_tuple(config)
    if found is None:
        raise _not_found(user_id, thread_id)
    return list(found.checkpoint["channel_values"].get("messages") or [])


def delete_thread(checkpointer: OwnedCheckpointer, user_id: str, thread_id: str) -> None:
    """Delete one of ``user_id``'s threads (its every checkpoint and the registry entry)."""
    if not checkpointer.delete_user_thread(user_id, thread_id):
        raise _not_found(user_id, thread_id)
