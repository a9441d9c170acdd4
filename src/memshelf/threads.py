"""Thread memory that belongs to one user, on any LangGraph checkpointer.

LangGraph's checkpointers key a conversation by ``thread_id`` alone, so two users
who name the same thread would read and extend one history. :class:`OwnedCheckpointer`
wraps any saver (SqliteSaver, AsyncSqliteSaver, RedisSaver, AsyncRedisSaver,
InMemorySaver) and is the only way memshelf's agents reach one:

- every call needs ``user_id`` next to ``thread_id`` in ``config["configurable"]``;
  the inner saver only ever sees :func:`~memshelf.namespaces.owned_thread_id`, so
  the same name used by two users is two threads;
- each checkpoint records its owner in metadata (``memshelf_owner``) and one whose
  owner differs is treated as absent: another user's thread looks exactly like a
  thread that does not exist;
- calls that name threads without an owner (``delete_thread``, ``copy_thread``,
  ``prune``, ``list(None)``) are refused; :meth:`OwnedCheckpointer.delete_user_thread`
  and :func:`list_threads` are the owner-scoped versions;
- a thread written before memshelf scoped ids (its raw name as the id) is adopted
  by its owner on first use, once, only if every checkpoint in it was written with
  that owner's ``user_id``; a thread two users wrote to is handed to nobody.

A registry in the store, ``("threads", <user>)``, lists each user's threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.store.base import BaseStore

from memshelf.errors import ConfigurationError, MissingUserIdError
from memshelf.namespaces import (
    THREAD_ID_VERSION,
    encode_label,
    owned_thread_id,
    threads_namespace,
)

OWNER_KEY = "memshelf_owner"
LEGACY_SCAN_LIMIT = 10_000
log = logging.getLogger(__name__)


class _Scope(NamedTuple):
    user_id: str
    thread_id: str  # the caller's name for the thread
    internal: str  # what the inner saver sees

    @property
    def owner(self) -> str:
        return encode_label(self.user_id)


def _scope(config: RunnableConfig | None) -> tuple[RunnableConfig, _Scope]:
    """The inner saver's config for ``config``, and whose thread it is."""
    configurable = dict((config or {}).get("configurable") or {})
    user = configurable.get("user_id")
    if user is None or not str(user).strip():
        raise MissingUserIdError(
            "A thread belongs to a user: pass user_id next to thread_id, e.g. "
            "config={'configurable': {'user_id': 'alice', 'thread_id': 't1'}} "
            "(or `--user alice` on the command line)."
        )
    thread = configurable.get("thread_id")
    scope = _Scope(str(user), "" if thread is None else str(thread), "")
    scope = scope._replace(internal=owned_thread_id(scope.user_id, scope.thread_id))
    configurable["thread_id"] = scope.internal
    return {**(config or {}), "configurable": configurable}, scope


def _public_config(config: RunnableConfig, scope: _Scope) -> RunnableConfig:
    """A config as the caller knows it: their thread name and user id, reusable as is."""
    configurable = {
        **(config.get("configurable") or {}),
        "thread_id": scope.thread_id,
        "user_id": scope.user_id,
    }
    return {**config, "configurable": configurable}


def _refused(what: str, instead: str) -> ConfigurationError:
    return ConfigurationError(
        f"{what} names threads without their owner, so memshelf refuses it. {instead}"
    )


_DELETE = "Use OwnedCheckpointer.delete_user_thread(user_id, thread_id) instead."
_ADELETE = "Use await OwnedCheckpointer.adelete_user_thread(user_id, thread_id) instead."
_LIST = (
    "Pass a config with user_id and thread_id; memshelf.threads.list_threads(store, user_id) "
    "lists one user's threads."
)
_NONE = (
    "memshelf has no owner-scoped version of it; call it on OwnedCheckpointer.inner with "
    "ids from memshelf.namespaces.owned_thread_id(user_id, thread_id) if you must."
)


class OwnedCheckpointer(BaseCheckpointSaver[Any]):
    """A checkpointer whose threads are scoped by ``user_id`` (see the module docstring)."""

    def __init__(self, inner: BaseCheckpointSaver[Any], store: BaseStore | None = None) -> None:
        if isinstance(inner, OwnedCheckpointer):
            raise ConfigurationError("This checkpointer is already owner-scoped; pass its .inner.")
        super().__init__(serde=inner.serde)
        self.inner = inner
        self.store = store
        self._registered: set[_Scope] = set()
        self._lock = threading.Lock()

    @property
    def config_specs(self) -> list[Any]:
        return list(self.inner.config_specs)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> OwnedCheckpointer:
        """The inner saver decodes, so it is the one that needs the graph's allowlist
        (LANGGRAPH_STRICT_MSGPACK); the clone shares the registry bookkeeping."""
        inner = self.inner.with_allowlist(extra_allowlist)
        if inner is self.inner:
            return self
        clone = OwnedCheckpointer(inner, self.store)
        clone._registered, clone._lock = self._registered, self._lock
        return clone

    # --- what the caller may see -------------------------------------------------------

    def _visible(self, found: CheckpointTuple | None, scope: _Scope) -> CheckpointTuple | None:
        if found is None or (found.metadata or {}).get(OWNER_KEY) != scope.owner:
            return None
        parent = found.parent_config
        return found._replace(
            config=_public_config(found.config, scope),
            parent_config=_public_config(parent, scope) if parent else None,
        )

    # --- the registry of a user's threads --------------------------------------------

    def _registry_update(self, scope: _Scope, metadata: CheckpointMetadata) -> bool:
        """Whether this put should touch the registry: once per thread and per turn."""
        with self._lock:
            first = scope not in self._registered
            self._registered.add(scope)
        return self.store is not None and (first or metadata.get("source") == "input")

    @staticmethod
    def _entry(scope: _Scope, old: Any) -> dict[str, Any]:
        """The registry entry after a turn: what it held (its metadata) kept, times moved."""
        now = datetime.now(UTC).isoformat()
        kept = dict(old.value) if old is not None else {}
        created = kept.get("created_at") or now
        return {**kept, "thread_id": scope.thread_id, "created_at": created, "updated_at": now}

    def _register(self, scope: _Scope, metadata: CheckpointMetadata) -> None:
        if self._registry_update(scope, metadata):
            assert self.store is not None
            ns, key = threads_namespace(scope.user_id), scope.internal
            entry = self._entry(scope, self.store.get(ns, key, refresh_ttl=False))
            self.store.put(ns, key, entry, index=False, ttl=None)

    async def _aregister(self, scope: _Scope, metadata: CheckpointMetadata) -> None:
        if self._registry_update(scope, metadata):
            assert self.store is not None
            ns, key = threads_namespace(scope.user_id), scope.internal
            old = await self.store.aget(ns, key, refresh_ttl=False)
            await self.store.aput(ns, key, self._entry(scope, old), index=False, ttl=None)

    # --- threads written before scoping ----------------------------------------------

    @staticmethod
    def _legacy_config(scope: _Scope) -> RunnableConfig:
        return {"configurable": {"thread_id": scope.thread_id}}

    @staticmethod
    def _is_legacy_name(scope: _Scope) -> bool:
        """Scoped ids are never looked up as pre-scoping names (``ms1.alice.vault`` must
        not reach alice's thread ``vault``, nor tell anyone it exists)."""
        return not scope.thread_id.startswith(THREAD_ID_VERSION + ".")

    @staticmethod
    def _adoptable(history: list[CheckpointTuple], scope: _Scope) -> bool:
        """Only a thread this user alone wrote, seen whole; anything else looks absent,
        silently (a message here would tell the caller that someone else's thread exists).

        LangGraph's SQLite savers record ``user_id`` in checkpoint metadata; its Redis
        savers do not, so a pre-scoping Redis thread is nobody's. A listing that may be
        cut short (RedisSaver stops at 10,000) is never trusted.
        """
        if len(history) >= LEGACY_SCAN_LIMIT:
            return False
        return {(t.metadata or {}).get("user_id") for t in history} == {scope.user_id}

    @staticmethod
    def _copies(
        history: list[CheckpointTuple], scope: _Scope
    ) -> Iterator[tuple[RunnableConfig, Checkpoint, CheckpointMetadata, list[Any]]]:
        """Oldest first, so each parent exists before its child."""
        for old in reversed(history):
            conf: dict[str, Any] = {
                "thread_id": scope.internal,
                "checkpoint_ns": old.config["configurable"].get("checkpoint_ns", ""),
            }
            if old.parent_config:
                conf["checkpoint_id"] = old.parent_config["configurable"]["checkpoint_id"]
            metadata: Any = {**(old.metadata or {}), OWNER_KEY: scope.owner}
            yield {"configurable": conf}, old.checkpoint, metadata, list(old.pending_writes or [])

    @staticmethod
    def _by_task(writes: list[Any]) -> dict[str, list[tuple[str, Any]]]:
        tasks: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in writes:
            tasks.setdefault(str(task_id), []).append((channel, value))
        return tasks

    def _adopt_legacy(self, scope: _Scope) -> None:
        if not self._is_legacy_name(scope):
            return
        history = list(self.inner.list(self._legacy_config(scope)))
        if not history or not self._adoptable(history, scope):
            return
        for config, checkpoint, metadata, writes in self._copies(history, scope):
            saved = self.inner.put(config, checkpoint, metadata, checkpoint["channel_versions"])
            for task_id, task_writes in self._by_task(writes).items():
                self.inner.put_writes(saved, task_writes, task_id)
        self._register(scope, {"source": "input"})
        self.inner.delete_thread(scope.thread_id)
        log.warning("Migrated a thread written before per-user threads to its owner's scope.")

    async def _aadopt_legacy(self, scope: _Scope) -> None:
        if not self._is_legacy_name(scope):
            return
        history = [t async for t in self.inner.alist(self._legacy_config(scope))]
        if not history or not self._adoptable(history, scope):
            return
        for config, checkpoint, metadata, writes in self._copies(history, scope):
            saved = await self.inner.aput(
                config, checkpoint, metadata, checkpoint["channel_versions"]
            )
            for task_id, task_writes in self._by_task(writes).items():
                await self.inner.aput_writes(saved, task_writes, task_id)
        await self._aregister(scope, {"source": "input"})
        await self.inner.adelete_thread(scope.thread_id)
        log.warning("Migrated a thread written before per-user threads to its owner's scope.")

    def migrate_legacy(self, *, delete_shared: bool = False) -> tuple[int, int, int]:
        """Adopt every pre-scoping thread that one user alone wrote (the same as first use
        does, for all of them at once). Threads written by several users, or without a
        user id, are nobody's: with ``delete_shared`` they are deleted. Returns (adopted,
        unassigned, deleted)."""
        writers: dict[str, set[Any]] = {}
        for found in self.inner.list(None):
            thread = str(found.config["configurable"]["thread_id"])
            if not thread.startswith(THREAD_ID_VERSION + "."):
                writers.setdefault(thread, set()).add((found.metadata or {}).get("user_id"))
        adopted = unassigned = deleted = 0
        for thread, users in writers.items():
            if len(users) == 1 and isinstance(owner := next(iter(users)), str) and owner.strip():
                inner, scope = _scope({"configurable": {"user_id": owner, "thread_id": thread}})
                if self.inner.get_tuple(inner) is None:
                    self._adopt_legacy(scope)
                    adopted += 1
                    continue
            if delete_shared:
                self.inner.delete_thread(thread)
                deleted += 1
            else:
                unassigned += 1
        return adopted, unassigned, deleted

    # --- BaseCheckpointSaver, sync ------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        inner, scope = _scope(config)
        found = self.inner.get_tuple(inner)
        if found is None and not inner["configurable"].get("checkpoint_id"):
            self._adopt_legacy(scope)
            found = self.inner.get_tuple(inner)
        return self._visible(found, scope)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        if config is None:
            raise _refused("list(None)", _LIST)
        inner, scope = _scope(config)
        if self.inner.get_tuple({"configurable": {"thread_id": scope.internal}}) is None:
            self._adopt_legacy(scope)
        before = _scope(_public_config(before, scope))[0] if before else None
        found = self.inner.list(inner, filter=filter, before=before, limit=limit)
        return (v for t in found if (v := self._visible(t, scope)) is not None)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        inner, scope = _scope(config)
        self._register(scope, metadata)
        owned: Any = {**metadata, OWNER_KEY: scope.owner}
        return _public_config(self.inner.put(inner, checkpoint, owned, new_versions), scope)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        inner, _ = _scope(config)
        self.inner.put_writes(inner, writes, task_id, task_path)

    def delete_user_thread(self, user_id: str, thread_id: str) -> bool:
        """Delete one of ``user_id``'s threads; False if they have none by that name."""
        inner, scope = _scope({"configurable": {"user_id": user_id, "thread_id": thread_id}})
        existed = self.get_tuple(_public_config(inner, scope)) is not None
        self.inner.delete_thread(scope.internal)
        if self.store is not None:
            self.store.delete(threads_namespace(user_id), scope.internal)
        with self._lock:
            self._registered.discard(scope)
        return existed

    # --- BaseCheckpointSaver, async -----------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        inner, scope = _scope(config)
        found = await self.inner.aget_tuple(inner)
        if found is None and not inner["configurable"].get("checkpoint_id"):
            await self._aadopt_legacy(scope)
            found = await self.inner.aget_tuple(inner)
        return self._visible(found, scope)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if config is None:
            raise _refused("alist(None)", _LIST)
        inner, scope = _scope(config)
        if await self.inner.aget_tuple({"configurable": {"thread_id": scope.internal}}) is None:
            await self._aadopt_legacy(scope)
        before = _scope(_public_config(before, scope))[0] if before else None
        async for found in self.inner.alist(inner, filter=filter, before=before, limit=limit):
            if (visible := self._visible(found, scope)) is not None:
                yield visible

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        inner, scope = _scope(config)
        await self._aregister(scope, metadata)
        owned: Any = {**metadata, OWNER_KEY: scope.owner}
        saved = await self.inner.aput(inner, checkpoint, owned, new_versions)
        return _public_config(saved, scope)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        inner, _ = _scope(config)
        await self.inner.aput_writes(inner, writes, task_id, task_path)

    async def adelete_user_thread(self, user_id: str, thread_id: str) -> bool:
        """Async :meth:`delete_user_thread`."""
        inner, scope = _scope({"configurable": {"user_id": user_id, "thread_id": thread_id}})
        existed = await self.aget_tuple(_public_config(inner, scope)) is not None
        await self.inner.adelete_thread(scope.internal)
        if self.store is not None:
            await self.store.adelete(threads_namespace(user_id), scope.internal)
        with self._lock:
            self._registered.discard(scope)
        return existed

    # --- calls that name a thread without its owner -----------------------------------

    def delete_thread(self, thread_id: str) -> None:
        raise _refused("delete_thread(thread_id)", _DELETE)

    async def adelete_thread(self, thread_id: str) -> None:
        raise _refused("adelete_thread(thread_id)", _ADELETE)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        raise _refused("copy_thread()", _NONE)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        raise _refused("acopy_thread()", _NONE)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        raise _refused("prune()", _NONE)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        raise _refused("aprune()", _NONE)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        raise _refused("delete_for_runs()", _NONE)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        raise _refused("adelete_for_runs()", _NONE)


def owned(
    checkpointer: BaseCheckpointSaver[Any], store: BaseStore | None = None
) -> OwnedCheckpointer:
    """``checkpointer`` scoped by user (the same object if it already is), keeping its
    thread registry in ``store`` unless it has one."""
    if isinstance(checkpointer, OwnedCheckpointer):
        if checkpointer.store is None:
            checkpointer.store = store
        return checkpointer
    return OwnedCheckpointer(checkpointer, store)


class ThreadInfo(NamedTuple):
    thread_id: str
    created_at: str
    updated_at: str
    metadata: Mapping[str, Any] = MappingProxyType({})  # the caller's, from thread create


def _info(value: Mapping[str, Any]) -> ThreadInfo:
    metadata = value.get("metadata")
    return ThreadInfo(
        value["thread_id"],
        value["created_at"],
        value["updated_at"],
        dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def list_threads(store: BaseStore, user_id: str) -> list[ThreadInfo]:
    """``user_id``'s threads, most recently active first (nobody else's, ever)."""
    namespace = threads_namespace(user_id)
    threads: list[ThreadInfo] = []
    while batch := store.search(namespace, limit=1000, offset=len(threads), refresh_ttl=False):
        threads += [_info(i.value) for i in batch]
    return sorted(threads, key=lambda t: t.updated_at, reverse=True)


def registered_thread(store: BaseStore, user_id: str, thread_id: str) -> ThreadInfo | None:
    """``user_id``'s registry entry for ``thread_id`` (None: they have no such thread)."""
    found = store.get(
        threads_namespace(user_id), owned_thread_id(user_id, thread_id), refresh_ttl=False
    )
    return _info(found.value) if found is not None else None


def register_thread(
    store: BaseStore,
    user_id: str,
    thread_id: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    merge: bool = False,
) -> ThreadInfo:
    """Enter ``thread_id`` in ``user_id``'s registry before its first turn (a thread created
    empty, as LangGraph's server does), or set its metadata: replaced, or with ``merge``
    updated key by key. The checkpointer keeps the entry current from then on."""
    namespace, key = threads_namespace(user_id), owned_thread_id(user_id, thread_id)
    old = store.get(namespace, key, refresh_ttl=False)
    now = datetime.now(UTC).isoformat()
    entry: dict[str, Any] = dict(old.value) if old is not None else {"created_at": now}
    kept = entry.get("metadata")
    merged = {**(kept if merge and isinstance(kept, Mapping) else {}), **(metadata or {})}
    entry.update(thread_id=thread_id, updated_at=now, metadata=merged)
    store.put(namespace, key, entry, index=False, ttl=None)
    return _info(entry)
