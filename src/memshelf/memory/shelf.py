"""Reading and editing one user's shelf: save, list, edit, forget, export and import.

Every write goes through :func:`put_memory` (one TTL rule: pinned memories never
expire, a kind may have its own TTL, everything else the store's default) and
every change is recorded in the memory's history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import NOT_PROVIDED, BaseStore, Item, NotProvided, Op, PutOp, Result

from memshelf.errors import InvalidInputError, NotFoundError
from memshelf.memory.guard import clean_fact
from memshelf.memory.history import history, history_keys, record
from memshelf.memory.types import ACTIVE, CURRENT, Fact, Provenance, fact_key
from memshelf.namespaces import (
    HISTORY,
    decode_label,
    history_namespace,
    memories_namespace,
    threads_namespace,
)

FORGET_MIN_SCORE = 0.3
FORGET_RELATIVE = 0.85
_PAGE = 500
MINUTES_PER_DAY = 24 * 60


def memory_ttl(
    value: Mapping[str, Any], kind_ttl: Mapping[str, float | None] | None = None
) -> float | NotProvided | None:
    """Minutes a memory lives after its last read: None (pinned) means forever."""
    if value.get("pinned"):
        return None
    kind = str(value.get("kind", ""))
    if kind_ttl and kind in kind_ttl:
        days = kind_ttl[kind]
        return None if days is None else days * MINUTES_PER_DAY
    return NOT_PROVIDED


def put_memory(
    store: BaseStore,
    user_id: str,
    key: str,
    value: dict[str, Any],
    *,
    kind_ttl: Mapping[str, float | None] | None = None,
) -> None:
    """The one write of a memory value (history is the caller's job)."""
    ttl = memory_ttl(value, kind_ttl)
    if ttl is not None and ttl is not NOT_PROVIDED and not store.supports_ttl:
        ttl = NOT_PROVIDED
    store.put(memories_namespace(user_id), key, value, ttl=ttl)


def _version(value: Mapping[str, Any]) -> int:
    """A value's version, 1 when it has none usable (stored before versions were checked)."""
    version = value.get("version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _cleaned(text: str) -> str:
    cleaned = clean_fact(text)
    if cleaned is None:
        raise InvalidInputError(
            f"Not stored: {text[:80]!r} is empty, longer than 300 characters, or reads as an "
            "instruction rather than a fact about the user."
        )
    return cleaned


def save_fact(
    store: BaseStore,
    user_id: str,
    text: str,
    provenance: Provenance,
    *,
    kind: str = "fact",
    pinned: bool = False,
) -> str:
    """Store one fact a person or tool chose (a duplicate is not stored twice); its key."""
    from memshelf.memory.consolidate import add, consolidate

    fact = Fact(_cleaned(text), kind)
    if pinned:
        return add(store, user_id, fact, provenance, pinned=True)
    outcome = consolidate(store, None, user_id, fact, provenance)
    return outcome.key or fact_key(fact.text)


def edit_fact(
    store: BaseStore, user_id: str, key: str, text: str, provenance: Provenance
) -> dict[str, Any]:
    """Change a memory's wording by hand (a new version, kept in history)."""
    namespace = memories_namespace(user_id)
    item = store.get(namespace, key)
    if item is None:
        raise NotFoundError(f"User {user_id!r} has no memory {key!r}.")
    after = {
        **item.value,
        "text": _cleaned(text),
        "version": _version(item.value) + 1,
        "provenance": provenance.as_dict(),
    }
    put_memory(store, user_id, key, after)
    record(store, user_id, key, "edit", dict(item.value), after, provenance)
    return after


def restore_fact(
    store: BaseStore, user_id: str, memory_id: str, version: int, provenance: Provenance
) -> dict[str, Any]:
    """Make ``version`` of a memory current again (as a new version); returns the value."""
    events = history(store, user_id, memory_id)
    snapshot = next(
        (
            value
            for event in reversed(events)
            for value in (event.get("after"), event.get("before"))
            if value and value.get("version") == version
        ),
        None,
    )
    if snapshot is None:
        raise NotFoundError(
            f"User {user_id!r} has no version {version} of memory {memory_id!r}. "
            f"`memshelf memories history --user {user_id} {memory_id}` lists its versions."
        )
    namespace = memories_namespace(user_id)
    current = store.get(namespace, memory_id)
    before = current.value if current is not None else None
    latest = max([_version(e) for e in events] + [1])
    value = {
        **snapshot,
        "status": ACTIVE,
        "version": latest + 1,
        "provenance": provenance.as_dict(),
    }
    for stale in ("invalid_at", "superseded_by"):
        value.pop(stale, None)
    put_memory(store, user_id, memory_id, value)
    record(store, user_id, memory_id, "restore", before, value, provenance)
    return value


def all_items(
    store: BaseStore, namespace: tuple[str, ...], filter: dict[str, Any] | None = None
) -> list[Item]:
    """Every live item under a namespace, paging through search."""
    items: list[Item] = []
    while True:
        page = store.search(namespace, filter=filter, limit=_PAGE, offset=len(items))
        items.extend(page)
        if len(page) < _PAGE:
            return items


def list_facts(store: BaseStore, user_id: str, *, include_superseded: bool = False) -> list[Item]:
    """The user's current memories (and superseded ones if asked), newest first."""
    return all_items(store, memories_namespace(user_id), None if include_superseded else CURRENT)


@dataclass(frozen=True)
class Forgotten:
    key: str
    text: str


def find_to_forget(store: BaseStore, user_id: str, what: str) -> list[Forgotten]:
    """What :func:`forget` would delete for ``what`` (a key, or a description).

    The best match by meaning must score at least ``FORGET_MIN_SCORE``; matches
    scoring at least ``FORGET_RELATIVE`` of it (rewordings of the same fact) go too,
    so no copy of the fact survives.
    """
    namespace = memories_namespace(user_id)
    exact = store.get(namespace, what.strip())
    if exact is not None:
        return [Forgotten(exact.key, str(exact.value.get("text", exact.key)))]
    hits = [h for h in store.search(namespace, query=what, limit=10) if h.score is not None]
    if not hits or (hits[0].score or 0.0) < FORGET_MIN_SCORE:
        return []
    floor = max(FORGET_MIN_SCORE, (hits[0].score or 0.0) * FORGET_RELATIVE)
    return [
        Forgotten(h.key, str(h.value.get("text", h.key))) for h in hits if (h.score or 0.0) >= floor
    ]


def forget(
    store: BaseStore,
    user_id: str,
    what: str,
    *,
    dry_run: bool = False,
    provenance: Provenance | None = None,
) -> list[str]:
    """Delete the memory ``what`` names and its near-duplicates; the texts deleted.

    With ``dry_run`` nothing is deleted: the texts that would go are returned. Each
    memory goes with its whole history (see :func:`forget_fact`). ``provenance`` is
    accepted for callers that pass one; a forget leaves no event to hold it.
    """
    found = find_to_forget(store, user_id, what)
    if not dry_run:
        for gone in found:
            forget_fact(store, user_id, gone.key)
    return [f.text for f in found]


def forget_fact(store: BaseStore, user_id: str, key: str) -> None:
    """Remove one memory and every event of its history, leaving no tombstone.

    A forget removes every copy, and the key itself is a copy: keys are a hash of the
    fact's text, so a ``delete`` event kept under the key would let anyone who saw the
    key confirm a guessed fact. (:func:`delete_fact` keeps that text-free event.)"""
    store.delete(memories_namespace(user_id), key)
    for event in history_keys(store, user_id, key):
        store.delete(history_namespace(user_id), event)


def delete_fact(store: BaseStore, user_id: str, key: str, provenance: Provenance) -> None:
    """Delete one memory and its earlier history (which holds its text), leaving one
    text-free ``delete`` event: a deleted memory cannot be restored."""
    store.delete(memories_namespace(user_id), key)
    for event in history_keys(store, user_id, key):  # no copy of the text stays
        store.delete(history_namespace(user_id), event)
    record(store, user_id, key, "delete", None, None, provenance)


def forget_user(store: BaseStore, user_id: str) -> int:
    """Delete every memory, history event and thread-registry entry of ``user_id``; the
    number of items removed. The threads themselves live in the checkpointer:
    :func:`memshelf.ops.forget.forget_everything` removes those too."""
    removed = 0
    for namespace in (
        memories_namespace(user_id),
        history_namespace(user_id),
        threads_namespace(user_id),
    ):
        while page := store.search(namespace, limit=_PAGE, refresh_ttl=False):
            for item in page:
                store.delete(namespace, item.key)
            removed += len(page)
    return removed


def prune_history(store: BaseStore) -> int:
    """Delete the history of memories that no longer exist (expired or deleted), so an
    expired memory's text does not outlive it there; the text-free ``delete`` events of
    forgotten memories stay. Returns how many events went. One pass over every user's
    history: run it with the TTL sweep, not per request."""
    removed = 0
    for namespace in store.list_namespaces(prefix=(HISTORY,), limit=10**9):
        user = decode_label(namespace[1])
        gone: list[str] = []
        for item in all_items(store, namespace):
            memory_id = str(item.value.get("memory_id", ""))
            has_text = item.value.get("before") or item.value.get("after")
            if has_text and store.get(memories_namespace(user), memory_id) is None:
                gone.append(item.key)
        for key in gone:
            store.delete(namespace, key)
        removed += len(gone)
    return removed


def export_facts(store: BaseStore, user_id: str) -> list[dict[str, Any]]:
    """The shelf as JSON-ready records (key, value, timestamps, history), superseded too."""
    return [
        {
            "key": item.key,
            "value": item.value,
            "created_at": item.created_at.isoformat(),
            "updated_at": item.updated_at.isoformat(),
            "history": history(store, user_id, item.key),
        }
        for item in list_facts(store, user_id, include_superseded=True)
    ]


def import_facts(store: BaseStore, user_id: str, records: Iterable[dict[str, Any]]) -> int:
    """Load records made by :func:`export_facts` onto (possibly another) user's shelf,
    through the same guard and TTL rules as any other write. The records and their
    history go in one batch: a write that fails (disk full, server gone) leaves none."""
    count = 0
    staged = _Staged(store)
    for entry in records:
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
            raise InvalidInputError("Each imported record needs a 'value' object (see export).")
        value = {**entry["value"], "text": _cleaned(str(entry["value"].get("text", "")))}
        key = str(entry.get("key") or fact_key(value["text"]))
        put_memory(staged, user_id, key, value)
        record(staged, user_id, key, "import", None, value, Provenance(source="import"))
        count += 1
    if staged.ops:
        store.batch(staged.ops)
    return count


class _Staged(BaseStore):
    """Collects the puts made through it, to write them later as one atomic batch."""

    def __init__(self, store: BaseStore) -> None:
        self.supports_ttl = store.supports_ttl
        self.ttl_config = store.ttl_config  # BaseStore.put resolves the default TTL from it
        self.ops: list[Op] = []

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        found = list(ops)
        if not all(isinstance(op, PutOp) for op in found):
            raise TypeError("only puts can be staged")
        self.ops.extend(found)
        return [None] * len(found)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return self.batch(ops)
