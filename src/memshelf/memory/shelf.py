"""Reading and editing one user's shelf: save, list, forget, export and import facts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.store.base import BaseStore, Item

from memshelf.errors import MemshelfError
from memshelf.memory.guard import clean_fact
from memshelf.memory.types import Provenance, fact_key, fact_value
from memshelf.namespaces import memories_namespace

FORGET_MIN_SCORE = 0.3
FORGET_RELATIVE = 0.85
_PAGE = 500


def save_fact(store: BaseStore, user_id: str, text: str, provenance: Provenance) -> str:
    """Store one fact (idempotent per wording); returns its key."""
    cleaned = clean_fact(text)
    if cleaned is None:
        raise MemshelfError(
            f"Not stored: {text[:80]!r} is empty, longer than 300 characters, or reads as an "
            "instruction rather than a fact about the user."
        )
    key = fact_key(cleaned)
    store.put(memories_namespace(user_id), key, fact_value(cleaned, provenance))
    return key


def list_facts(store: BaseStore, user_id: str) -> list[Item]:
    """Every live item on the user's shelf, newest first."""
    return all_items(store, memories_namespace(user_id))


def all_items(store: BaseStore, namespace: tuple[str, ...]) -> list[Item]:
    """Every live item under a namespace, paging through search."""
    items: list[Item] = []
    while True:
        page = store.search(namespace, limit=_PAGE, offset=len(items))
        items.extend(page)
        if len(page) < _PAGE:
            return items


def forget(store: BaseStore, user_id: str, what: str) -> list[str]:
    """Delete the fact ``what`` names (by key or by meaning) and its near-duplicates.

    The best match must score at least ``FORGET_MIN_SCORE``; matches scoring at
    least ``FORGET_RELATIVE`` of it (rewordings of the same fact) go too, so no
    copy of the fact survives.
    """
    namespace = memories_namespace(user_id)
    exact = store.get(namespace, what.strip())
    if exact is not None:
        store.delete(namespace, exact.key)
        return [str(exact.value.get("text", exact.key))]
    hits = [h for h in store.search(namespace, query=what, limit=10) if h.score is not None]
    if not hits or (hits[0].score or 0.0) < FORGET_MIN_SCORE:
        return []
    best = hits[0].score or 0.0
    floor = max(FORGET_MIN_SCORE, best * FORGET_RELATIVE)
    gone = [h for h in hits if (h.score or 0.0) >= floor]
    for hit in gone:
        store.delete(namespace, hit.key)
    return [str(h.value.get("text", h.key)) for h in gone]


def export_facts(store: BaseStore, user_id: str) -> list[dict[str, Any]]:
    """The shelf as JSON-ready records (key, value, timestamps), for backups and moves."""
    return [
        {
            "key": item.key,
            "value": item.value,
            "created_at": item.created_at.isoformat(),
            "updated_at": item.updated_at.isoformat(),
        }
        for item in list_facts(store, user_id)
    ]


def import_facts(store: BaseStore, user_id: str, records: Iterable[dict[str, Any]]) -> int:
    """Load records made by :func:`export_facts` onto (possibly another) user's shelf."""
    namespace = memories_namespace(user_id)
    count = 0
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("value"), dict):
            raise MemshelfError("Each imported record needs a 'value' object (see export).")
        value = record["value"]
        key = str(record.get("key") or fact_key(str(value.get("text", ""))))
        store.put(namespace, key, value)
        count += 1
    return count
