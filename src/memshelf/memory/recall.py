"""Recall: the user's facts most relevant to a message, within a size budget."""

from __future__ import annotations

from collections.abc import Sequence

from langgraph.store.base import BaseStore, SearchItem

from memshelf.memory.types import RecalledFact
from memshelf.namespaces import memories_namespace

DEFAULT_K = 5
DEFAULT_CHAR_BUDGET = 1200  # ~300 tokens: room for facts without crowding a small context


def _select(hits: Sequence[SearchItem], char_budget: int) -> list[RecalledFact]:
    """Active facts, best first, until the budget is spent (the best one always fits)."""
    facts: list[RecalledFact] = []
    used = 0
    for hit in hits:
        text = str(hit.value.get("text", "")).strip()
        if not text or hit.value.get("status", "active") != "active":
            continue
        if used + len(text) > char_budget and facts:
            break
        facts.append(RecalledFact(key=hit.key, text=text, score=hit.score))
        used += len(text)
    return facts


def recall(
    store: BaseStore,
    user_id: str,
    query: str,
    *,
    k: int = DEFAULT_K,
    char_budget: int = DEFAULT_CHAR_BUDGET,
) -> list[RecalledFact]:
    """Top-k facts by meaning and keyword, cut off at ``char_budget`` characters."""
    if not query.strip():
        return []
    return _select(store.search(memories_namespace(user_id), query=query, limit=k), char_budget)


async def arecall(
    store: BaseStore,
    user_id: str,
    query: str,
    *,
    k: int = DEFAULT_K,
    char_budget: int = DEFAULT_CHAR_BUDGET,
) -> list[RecalledFact]:
    """Async twin of :func:`recall` for async graphs and the service."""
    if not query.strip():
        return []
    hits = await store.asearch(memories_namespace(user_id), query=query, limit=k)
    return _select(hits, char_budget)
