"""Forget everything about a user: memories, history, threads, and the bytes behind them;
their ids in team findings they contributed to are anonymised."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import BaseStore

from memshelf.memory import MemoryWriter, forget_user
from memshelf.memory.shelf import all_items
from memshelf.memory.writer import forget_extraction
from memshelf.namespaces import THREAD_ID_VERSION, encode_label
from memshelf.ops.keys import KeyRing
from memshelf.team.findings import anonymise_contributor
from memshelf.threads import OwnedCheckpointer, list_threads

log = logging.getLogger(__name__)
RUNS = "runs"
SPENT_TOKENS = "forget-tokens"
UI_SESSIONS = ("ui-sessions",)  # the inspector's sessions (memshelf.ui.session), all users'


def runs_namespace(user_id: str) -> tuple[str, str]:
    """``("runs", <user>)``: the service's run records and thread leases for one user, kept
    in the store so every service process sees them (never reachable through /store)."""
    return (RUNS, encode_label(user_id))


def spent_tokens_namespace(user_id: str) -> tuple[str, str]:
    """``("forget-tokens", <user>)``: hashes of the user's redeemed MCP forget confirm
    tokens, so none is redeemed twice (never reachable through /store)."""
    return (SPENT_TOKENS, encode_label(user_id))


def _forget_runs(store: BaseStore, user_id: str) -> None:
    """Delete the user's run records and leases (they name the user's threads), the
    record of their spent confirm tokens and their inspector sessions."""
    for prefix in (runs_namespace(user_id), spent_tokens_namespace(user_id)):
        while found := store.search(prefix, limit=500):
            for item in found:
                store.delete(item.namespace, item.key)
    for session in all_items(store, UI_SESSIONS):  # few (they last 8 hours): read them all
        if session.value.get("user_id") == user_id:
            store.delete(UI_SESSIONS, session.key)


@dataclass(frozen=True)
class ForgetReport:
    memories_and_history: int
    threads: int


def _legacy_threads(checkpointer: OwnedCheckpointer, user_id: str) -> set[str]:
    """Threads from before per-user scoping that hold any checkpoint of this user
    (one scan of every checkpoint: forgetting a user is rare)."""
    inner = checkpointer.inner
    try:
        found = list(inner.list(None, filter={"user_id": user_id}))
    except ValueError:  # RedisSaver filters only its indexed fields
        found = [t for t in inner.list(None) if (t.metadata or {}).get("user_id") == user_id]
    except NotImplementedError:
        return set()
    ids = {str(t.config["configurable"]["thread_id"]) for t in found}
    return {i for i in ids if not i.startswith(THREAD_ID_VERSION + ".")}


def _scrub(target: Any) -> None:
    scrub = getattr(target, "scrub", None)
    if callable(scrub):
        scrub()
    conn = getattr(target, "conn", None)  # LangGraph's SqliteSaver
    if conn is not None and hasattr(conn, "execute"):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def forget_everything(
    store: BaseStore,
    checkpointer: OwnedCheckpointer | None,
    user_id: str,
    *,
    writer: MemoryWriter | None = None,
) -> ForgetReport:
    """Delete every memory, history event and thread of ``user_id``, then scrub the files.

    Pending extractions for the user are written first (so none lands afterwards).
    """
    if writer is not None:
        writer.wait(user_id)
        discard = getattr(writer, "discard_user", None)
        if callable(discard):
            discard(user_id)
    forget_extraction(store, user_id)  # every writer's statuses and unfinished jobs, first:
    threads = 0  # a job left by a dead process must not be taken over and written back
    if checkpointer is not None:
        for info in list_threads(store, user_id):
            threads += checkpointer.delete_user_thread(user_id, info.thread_id)
        for legacy in _legacy_threads(checkpointer, user_id):
            checkpointer.inner.delete_thread(legacy)
            threads += 1
        _scrub(checkpointer.inner)
    removed = forget_user(store, user_id)
    _forget_runs(store, user_id)
    key_ids = [key.key_id for key in KeyRing(store).list(user_id)]
    anonymise_contributor(store, user_id, key_ids=key_ids)  # findings stay the team's
    _scrub(store)
    clear = getattr(store, "clear_query_cache", None)
    if callable(clear):
        clear()
    return ForgetReport(memories_and_history=removed, threads=threads)
