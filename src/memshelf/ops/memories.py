"""A user's memories, for every surface: list, search, get, add, edit, delete, history,
restore, forget, export, import, extraction status, and raw store access to the shelf.

Each function takes the store and the authenticated ``user_id`` and derives every
namespace from it, so the CLI, the HTTP routes and later MCP and the inspector share one
implementation of each rule (ownership, history, the guard, all-or-nothing import).

Raw store access (the LangGraph-compatible ``/store`` endpoints) reaches one namespace
only: the caller's shelf ``("memories", <label>)``, where ``<label>`` is the user id
percent-encoded by :func:`memshelf.namespaces.encode_label` (``alice`` stays ``alice``,
``john.doe`` becomes ``john%2Edoe``). Callers send that label, the same tuple the store
returns in every item; a raw id is not accepted in its place, because a raw id can equal
another user's label (the id ``x%41`` is not the user ``xA``). Any other namespace
behaves exactly like an empty one: not found for a get or a delete, no items, no namespaces.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.store.base import NOT_PROVIDED, BaseStore, Item, NotProvided, SearchItem

from memshelf.errors import (
    InvalidInputError,
    NamespaceError,
    NotFoundError,
    ValueTooLargeError,
)
from memshelf.memory.guard import clean_fact
from memshelf.memory.history import history, record
from memshelf.memory.recall import recall
from memshelf.memory.shelf import (
    Forgotten,
    all_items,
    delete_fact,
    edit_fact,
    export_facts,
    find_to_forget,
    forget_fact,
    import_facts,
    restore_fact,
    save_fact,
)
from memshelf.memory.types import (
    ACTIVE,
    CURRENT,
    KIND_FACT,
    KINDS,
    SUPERSEDED,
    Provenance,
    RecalledFact,
)
from memshelf.memory.writer import MemoryWriter, ThreadStatus
from memshelf.namespaces import (
    memories_namespace,
    owned_thread_id,
    threads_namespace,
    validate_namespace,
)

__all__ = [
    "STATUSES",
    "Forgotten",
    "MemoryPage",
    "add_memory",
    "check_key",
    "check_value",
    "delete_memory",
    "describe",
    "edit_memory",
    "export_memories",
    "extraction_status",
    "forget_memories",
    "get_memory",
    "import_memories",
    "list_memories",
    "memory_history",
    "restore_memory",
    "search_memories",
    "shelf_namespace",
    "shown_value",
    "store_delete",
    "store_get",
    "store_namespaces",
    "store_put",
    "store_search",
    "wait_for_memories",
]

Status = Literal["current", "superseded", "all"]
STATUSES: tuple[str, ...] = ("current", "superseded", "all")
MAX_IMPORT_KEY_CHARS = 1024
MAX_VALUE_DEPTH = 64  # nesting of objects and lists in one value; JSON encoders stop near 255
# Segments /v1/memories/<segment> routes to something other than a memory, and what a
# URL path cannot carry as one segment: a memory keyed so could never be read back there.
RESERVED_KEYS: frozenset[str] = frozenset({"export", "import", "search", "forget", ".", ".."})
MEMORY_STATUSES: tuple[str, ...] = (ACTIVE, SUPERSEDED)
_MAX_NAMESPACES = 10_000  # one shelf holds one namespace: writes go to exactly it
_STATUS_FILTER: dict[str, dict[str, Any] | None] = {
    "current": CURRENT,
    "superseded": {"status": SUPERSEDED},
    "all": None,
}


# --- the shelf, as memories ---------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPage:
    """One page of a listing: ``total`` matches in all, ``next_offset`` None on the last."""

    items: list[Item]
    total: int
    offset: int
    next_offset: int | None


def _shape(value: Any) -> tuple[int, bool]:
    """How deeply objects and lists nest in ``value`` (a scalar is 0, ``{}`` is 1) and
    whether it holds NaN or an infinity; iterative, so a pathological value cannot
    exhaust the interpreter's stack."""
    deepest, odd, todo = 0, False, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, float) and not math.isfinite(node):
            odd = True
        elif isinstance(node, dict | list | tuple):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            todo.extend((child, depth + 1) for child in children)
    return deepest, odd


def check_key(key: Any) -> None:
    """Refuse a memory key that ``/v1/memories/{key}`` could not reach (a ``/``, or a
    segment that route answers itself), so every stored memory can be read back."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_IMPORT_KEY_CHARS:
        raise InvalidInputError(
            f"A memory key must be a non-empty string of at most {MAX_IMPORT_KEY_CHARS} characters."
        )
    if "/" in key or key in RESERVED_KEYS:
        raise InvalidInputError(
            f"Memory key {key[:80]!r} cannot be used: keys may not contain '/' or be one of "
            f"{', '.join(sorted(RESERVED_KEYS))} (the memories API could not address it). "
            "Choose another key, or leave it out on import to derive one from the text."
        )


def _engine_field_problem(value: dict[str, Any]) -> str | None:
    """What is wrong with the fields memshelf's engine reads from a memory value, if
    anything: other fields are the caller's own and left alone."""
    text, version = value.get("text"), value.get("version")
    if "text" in value and not isinstance(text, str):
        return f"'text' must be a string, not {type(text).__name__}"
    if "kind" in value and not isinstance(value["kind"], str):
        return f"'kind' must be a string (one of {', '.join(KINDS)})"
    if "status" in value and value["status"] not in MEMORY_STATUSES:
        return f"'status' must be one of {', '.join(MEMORY_STATUSES)}, not {value['status']!r}"[
            :200
        ]
    if "version" in value and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        return f"'version' must be a whole number of 1 or more, not {str(version)[:40]!r}"
    if "pinned" in value and not isinstance(value["pinned"], bool):
        return "'pinned' must be true or false"
    for field in ("valid_from", "valid_to"):
        if value.get(field) is not None and not isinstance(value[field], str):
            return f"'{field}' must be a date string or null"
    return None


def check_value(value: Any, where: str = "The value") -> None:
    """Refuse a memory value the engine could not read back or a JSON encoder could not
    write: engine fields of the wrong type, or nesting deeper than ``MAX_VALUE_DEPTH``."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be a JSON object.")
    depth, not_finite = _shape(value)
    if not_finite:
        raise InvalidInputError(f"{where} holds NaN or Infinity, which JSON cannot carry.")
    if depth > MAX_VALUE_DEPTH:
        raise InvalidInputError(
            f"{where} nests {depth} levels deep; at most {MAX_VALUE_DEPTH} levels are "
            "stored. Flatten it."
        )
    if problem := _engine_field_problem(value):
        raise InvalidInputError(f"{where}: {problem}.")


def _version(value: dict[str, Any]) -> int:
    version = value.get("version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def shown_value(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a response can carry it: one nested deeper than ``MAX_VALUE_DEPTH``
    (stored before the cap, or by the library directly) is replaced by a note, so it
    cannot fail the listing it is part of."""
    if _shape(value)[0] <= MAX_VALUE_DEPTH:
        return value
    return {"error": f"This value nests deeper than {MAX_VALUE_DEPTH} levels; not shown."}


def describe(item: Item) -> dict[str, Any]:
    """A memory as every surface shows it: the common fields lifted out of its value.
    Tolerant: a value stored before its fields were checked (by an older version, or by
    the library directly) shows with defaults rather than failing a whole listing."""
    value = item.value
    text = value.get("text")
    return {
        "key": item.key,
        "text": text if isinstance(text, str) else None if text is None else str(text),
        "kind": str(value.get("kind", KIND_FACT)),
        "status": str(value.get("status", ACTIVE)),
        "version": _version(value),
        "pinned": value.get("pinned") is True,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "value": shown_value(value),
    }


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _between(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
    moment = _aware(moment) or moment
    return (after is None or moment >= after) and (before is None or moment < before)


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"Unknown kind {kind!r}; kinds are {', '.join(KINDS)}.")


def list_memories(
    store: BaseStore,
    user_id: str,
    *,
    kind: str | None = None,
    status: str = "current",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    updated_before: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> MemoryPage:
    """The user's memories, most recently changed first, filtered and paged.

    ``status``: ``current`` (what recall sees), ``superseded`` or ``all``; dates are
    half-open ranges (``after`` inclusive, ``before`` exclusive; naive means UTC);
    ``limit`` None: every match.
    """
    if status not in _STATUS_FILTER:
        raise InvalidInputError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    _check_kind(kind)
    if offset < 0 or (limit is not None and limit < 1):
        raise InvalidInputError("offset must be 0 or more and limit 1 or more.")
    c_after, c_before = _aware(created_after), _aware(created_before)
    u_after, u_before = _aware(updated_after), _aware(updated_before)
    matches = [
        item
        for item in all_items(store, memories_namespace(user_id), _STATUS_FILTER[status])
        if (kind is None or str(item.value.get("kind", KIND_FACT)) == kind)
        and _between(item.created_at, c_after, c_before)
        and _between(item.updated_at, u_after, u_before)
    ]
    end = len(matches) if limit is None else offset + limit
    return MemoryPage(
        items=matches[offset:end],
        total=len(matches),
        offset=offset,
        next_offset=end if end < len(matches) else None,
    )


def search_memories(
    store: BaseStore, user_id: str, query: str, *, k: int = 5
) -> list[RecalledFact]:
    """The ``k`` current memories closest to ``query`` by meaning, keyword and recency
    (recall's ranking, without its prompt-size budget: a search shows all ``k``)."""
    if k < 1:
        raise InvalidInputError(f"k must be 1 or more, got {k}.")
    return recall(store, user_id, query, k=k, char_budget=sys.maxsize)


def _missing(user_id: str, key: str) -> NotFoundError:
    return NotFoundError(f"User {user_id!r} has no memory {key!r}.")


def get_memory(store: BaseStore, user_id: str, key: str) -> Item:
    """One memory by key (another user's key is simply not found)."""
    item = store.get(memories_namespace(user_id), key)
    if item is None:
        raise _missing(user_id, key)
    return item


def add_memory(
    store: BaseStore,
    user_id: str,
    text: str,
    *,
    kind: str = KIND_FACT,
    pinned: bool = False,
    source: str = "api",
) -> Item:
    """Save a fact through the engine's write path (guard, consolidation, history); the
    memory it now lives in (an existing one when the fact was already known)."""
    _check_kind(kind)
    key = save_fact(store, user_id, text, Provenance(source=source), kind=kind, pinned=pinned)
    return get_memory(store, user_id, key)


def edit_memory(
    store: BaseStore, user_id: str, key: str, text: str, *, source: str = "api"
) -> Item:
    """Reword a memory by hand: a new version; the old wording stays in its history."""
    edit_fact(store, user_id, key, text, Provenance(source=source))
    return get_memory(store, user_id, key)


def delete_memory(store: BaseStore, user_id: str, key: str, *, source: str = "api") -> None:
    """Delete exactly this memory (never a look-alike) and the history holding its text."""
    get_memory(store, user_id, key)
    delete_fact(store, user_id, key, Provenance(source=source))


def memory_history(store: BaseStore, user_id: str, key: str) -> list[dict[str, Any]]:
    """Every change made to one memory, oldest first."""
    events = history(store, user_id, key)
    if not events:
        raise NotFoundError(f"User {user_id!r} has no memory {key!r} with a history.")
    return events


def restore_memory(
    store: BaseStore, user_id: str, key: str, version: int, *, source: str = "api"
) -> Item:
    """Make an earlier version current again (recorded as a new version)."""
    restore_fact(store, user_id, key, version, Provenance(source=source))
    return get_memory(store, user_id, key)


def forget_memories(
    store: BaseStore, user_id: str, query: str, *, dry_run: bool = False, source: str = "api"
) -> list[Forgotten]:
    """The memory ``query`` names (a key, or a description) and its rewordings: deleted
    with their history, or with ``dry_run`` only listed."""
    found = find_to_forget(store, user_id, query)
    if not dry_run:
        for gone in found:
            forget_fact(store, user_id, gone.key)
    return found


def forget_memory(store: BaseStore, user_id: str, key: str) -> None:
    """One memory forgotten by key: removed with its whole history, no tombstone (the key
    is a hash of the text). Missing and another user's keys raise the same NotFoundError."""
    get_memory(store, user_id, key)
    forget_fact(store, user_id, key)


def export_memories(store: BaseStore, user_id: str) -> list[dict[str, Any]]:
    """Every memory (superseded too) with its timestamps and history, JSON-ready."""
    return [{**r, "value": shown_value(r["value"])} for r in export_facts(store, user_id)]


def _checked_record(index: int, entry: Any, max_bytes: int | None) -> None:
    where = f"Record {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
        raise InvalidInputError(
            f"{where} needs a 'value' object, as `memories export` writes. Nothing was imported."
        )
    key = entry.get("key")
    if key is not None:
        try:
            check_key(key)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc} Nothing was imported.") from None
    where += f" (key {key!r})" if key else ""
    try:
        check_value(entry["value"], f"{where}: its value")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{exc} Nothing was imported.") from None
    text = entry["value"].get("text")
    if not isinstance(text, str) or clean_fact(text) is None:
        raise InvalidInputError(
            f"{where}: its text {str(text)[:80]!r} is missing, empty, longer than 300 "
            "characters, or reads as an instruction rather than a fact. Nothing was imported."
        )
    if max_bytes is not None:
        size = len(json.dumps(entry["value"], ensure_ascii=False, default=str).encode())
        if size > max_bytes:
            raise InvalidInputError(
                f"{where}: its value is {size:,} bytes; the store takes at most "
                f"{max_bytes:,}. Nothing was imported."
            )


def import_memories(store: BaseStore, user_id: str, records: Any) -> int:
    """Load exported records onto the user's shelf, all or nothing: every record is
    checked before the first is written, and a bad one is named by its position."""
    if not isinstance(records, list):
        raise InvalidInputError(
            f"An import is a JSON list of records (what `memories export` writes), "
            f"not {type(records).__name__}."
        )
    max_bytes = getattr(store, "max_value_bytes", None)
    for index, entry in enumerate(records):
        _checked_record(index, entry, max_bytes if isinstance(max_bytes, int) else None)
    return import_facts(store, user_id, records)


def wait_for_memories(
    writer: MemoryWriter | None, user_id: str, *, thread_id: str | None = None, timeout: float
) -> bool:
    """Read-your-writes: wait until the user's pending extractions are written; False
    if ``timeout`` passed first (the answer then may lack the newest facts)."""
    return True if writer is None else writer.wait(user_id, thread_id, timeout)


def extraction_status(
    store: BaseStore, writer: MemoryWriter | None, user_id: str, thread_id: str
) -> ThreadStatus:
    """Where the background writer is with one of the user's threads."""
    registered = store.get(
        threads_namespace(user_id), owned_thread_id(user_id, thread_id), refresh_ttl=False
    )
    if registered is None:
        raise NotFoundError(f"User {user_id!r} has no thread {thread_id!r}.")
    if writer is None:
        return ThreadStatus()
    status = writer.status(user_id, thread_id)
    if status.error:  # a provider's error message can quote the user's words: type only
        kind = status.error.split(":", 1)[0].strip() or "Error"
        status = dataclasses.replace(
            status, error=f"{kind}: extraction failed; the service log names the error type."
        )
    # a status keeps op and key only (no fact's words outlive forget-me in any process):
    # the text shown is the memory's own, now ("" once it is gone)
    outcomes = [
        dataclasses.replace(o, text=_text_of(store, user_id, o.key)) for o in status.outcomes
    ]
    return dataclasses.replace(status, outcomes=outcomes)


def _text_of(store: BaseStore, user_id: str, key: str | None) -> str:
    item = None if key is None else store.get(memories_namespace(user_id), key, refresh_ttl=False)
    text = None if item is None else item.value.get("text")
    return text if isinstance(text, str) else ""


# --- the shelf, as a raw LangGraph store ------------------------------------------------


def shelf_namespace(user_id: str) -> tuple[str, str]:
    """The one namespace the store endpoints reach for ``user_id``."""
    return memories_namespace(user_id)


def _not_here(user_id: str) -> NotFoundError:
    """The same answer for a missing item and for an item that is not the caller's."""
    return NotFoundError(
        f"No item with that namespace and key. Your store is the namespace "
        f"{list(shelf_namespace(user_id))} (your user id as memshelf encodes it)."
    )


def _mine(user_id: str, namespace: Sequence[str]) -> bool:
    return tuple(namespace) == shelf_namespace(user_id)


def store_put(
    store: BaseStore,
    user_id: str,
    namespace: Sequence[str],
    key: str,
    value: dict[str, Any],
    *,
    index: Literal[False] | list[str] | None = None,
    ttl: float | NotProvided | None = NOT_PROVIDED,
    source: str = "api",
) -> None:
    """Put an item on the caller's shelf, recorded in its history like any other change."""
    if not _mine(user_id, namespace):
        raise NamespaceError(
            f"You can write only to your own shelf {list(shelf_namespace(user_id))} "
            f"(['memories', <your user id as memshelf.namespaces.encode_label encodes it>])."
        )
    check_key(key)
    check_value(value)
    own = shelf_namespace(user_id)
    old = store.get(own, key, refresh_ttl=False)
    before = dict(old.value) if old is not None else None
    store.put(own, key, value, index, ttl=ttl)
    provenance = Provenance(source=source)
    try:
        record(store, user_id, key, "put", before, dict(value), provenance)
    except ValueTooLargeError:  # copies too big to keep beside the value: note the change
        record(store, user_id, key, "put", None, None, provenance)


def store_get(
    store: BaseStore,
    user_id: str,
    namespace: Sequence[str],
    key: str,
    *,
    refresh_ttl: bool | None = None,
) -> Item:
    """An item of the caller's shelf; anything else is not found."""
    item = (
        store.get(shelf_namespace(user_id), key, refresh_ttl=refresh_ttl)
        if _mine(user_id, namespace) and key
        else None
    )
    if item is None:
        raise _not_here(user_id)
    return item


def store_delete(
    store: BaseStore, user_id: str, namespace: Sequence[str], key: str, *, source: str = "api"
) -> None:
    """Delete an item of the caller's shelf (with its history, as any memory deletion)."""
    store_get(store, user_id, namespace, key, refresh_ttl=False)
    delete_fact(store, user_id, key, Provenance(source=source))


def store_search(
    store: BaseStore,
    user_id: str,
    namespace_prefix: Sequence[str],
    *,
    filter: dict[str, Any] | None = None,
    limit: int = 10,
    offset: int = 0,
    query: str | None = None,
    refresh_ttl: bool | None = None,
) -> list[SearchItem]:
    """Search the caller's shelf; a prefix outside it finds nothing."""
    prefix = tuple(namespace_prefix)
    own = shelf_namespace(user_id)
    if prefix[: len(own)] != own:
        return []
    validate_namespace(prefix)
    try:
        return store.search(
            prefix, filter=filter, limit=limit, offset=offset, query=query, refresh_ttl=refresh_ttl
        )
    except NamespaceError:
        raise
    except ValueError as exc:  # the store names the unusable filter or argument
        raise InvalidInputError(f"Cannot search with these arguments: {exc}") from exc


def _matches(namespace: tuple[str, ...], pattern: tuple[str, ...], *, at_end: bool) -> bool:
    if len(namespace) < len(pattern):
        return False
    part = namespace[len(namespace) - len(pattern) :] if at_end else namespace[: len(pattern)]
    return all(p in ("*", n) for p, n in zip(pattern, part, strict=True))


def store_namespaces(
    store: BaseStore,
    user_id: str,
    *,
    prefix: Sequence[str] | None = None,
    suffix: Sequence[str] | None = None,
    max_depth: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[str, ...]]:
    """The caller's namespaces matching ``prefix``/``suffix`` (``*`` matches any label),
    cut to ``max_depth``, in order: the listing a store holding only their shelf gives."""
    if max_depth is not None and max_depth < 1:
        raise InvalidInputError(f"max_depth must be 1 or more, got {max_depth}.")
    mine = store.list_namespaces(prefix=shelf_namespace(user_id), limit=_MAX_NAMESPACES)
    found = {
        ns[:max_depth] if max_depth else ns
        for ns in mine
        if (not prefix or _matches(ns, tuple(prefix), at_end=False))
        and (not suffix or _matches(ns, tuple(suffix), at_end=True))
    }
    return sorted(found)[offset : offset + limit]
