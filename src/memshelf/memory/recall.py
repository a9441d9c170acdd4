"""Recall: the user's current facts most relevant to a message, within a size budget.

Superseded memories never come back here (they stay in history). A message that
asks what the agent knows about the user ("what do you remember about me?")
lists the shelf, newest first, instead of ranking it by similarity to the question.
Ties in relevance go to the more recently confirmed memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore, Item, SearchItem

from memshelf.memory.types import CURRENT, KIND_FACT, RecalledFact
from memshelf.namespaces import memories_namespace
from memshelf.stores._query import content_words, jaccard

DEFAULT_K = 5
DEFAULT_CHAR_BUDGET = 1200  # ~300 tokens: room for facts without crowding a small context
CANDIDATES = 3  # rank k*3 candidates so recency can reorder near-ties
RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 30.0

_ABOUT_ME = re.compile(
    r"\bwhat (else )?(do|did) you (know|remember|have|recall|store)\b.{0,25}\b(me|i|my)\b|"
    r"\b(list|show|tell me)\b.{0,15}\b(my|all|your)\b.{0,10}\b(memories|facts|what you know)\b|"
    r"\bwhat have you (learned|stored|saved|remembered)\b|\beverything you (know|remember)\b",
    re.IGNORECASE,
)


def asks_about_me(message: str) -> bool:
    """ "What do you know about me?": a request for the shelf, not a similarity query."""
    return bool(_ABOUT_ME.search(message))


@dataclass(frozen=True)
class Ranking:
    """How store hits are reordered after the store's hybrid search.

    ``diversity`` is the weight of a maximal-marginal-relevance step over word
    overlap: an item that repeats one already ranked above it (a turn whose
    window vector covers the same lines as its neighbour's) gives way to one
    that adds something, so evidence spread over several places fits in the
    top k. ``pool`` is how many candidates per wanted result are fetched for it.
    ``subject_boost`` is added to an item whose ``subject_field`` (who said or
    is the subject of it) is named in the query: a name that occurs in most
    items tells keyword search nothing, but says whose memories are meant.
    """

    diversity: float = 0.0
    pool: int = 1
    subject_boost: float = 0.0
    subject_field: str = "speaker"
    fields: tuple[str, ...] = ("text", "window")

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"Ranking.diversity must be in [0, 1], got {self.diversity}.")
        if self.pool < 1:
            raise ValueError(f"Ranking.pool must be at least 1, got {self.pool}.")
        if not 0.0 <= self.subject_boost <= 1.0:
            raise ValueError(f"Ranking.subject_boost must be in [0, 1], got {self.subject_boost}.")


def _words(value: Mapping[str, Any], fields: Sequence[str]) -> frozenset[str]:
    return content_words(" ".join(str(value.get(f) or "") for f in fields))


def rerank(hits: Sequence[SearchItem], query: str, k: int, ranking: Ranking) -> list[SearchItem]:
    """The best k hits by score (plus the subject boost) minus ``diversity`` times their
    word overlap with the hits ranked above them."""
    base = [float(h.score or 0.0) for h in hits]
    if ranking.subject_boost > 0:
        named = {w.lower() for w in re.findall(r"\w+", query)}
        for i, hit in enumerate(hits):
            subject = str(hit.value.get(ranking.subject_field) or "").lower()
            if subject and subject.split()[0] in named:
                base[i] += ranking.subject_boost
    if ranking.diversity <= 0 or len(hits) <= 1:
        order = sorted(range(len(hits)), key=lambda i: -base[i])
        return [hits[i] for i in order[:k]]
    words = [_words(h.value, ranking.fields) for h in hits]
    overlap = [0.0] * len(hits)
    left = list(range(len(hits)))
    chosen: list[int] = []
    while left and len(chosen) < k:
        best = max(left, key=lambda i: base[i] - ranking.diversity * overlap[i])
        left.remove(best)
        chosen.append(best)
        for i in left:
            overlap[i] = max(overlap[i], jaccard(words[i], words[best]))
    return [hits[i] for i in chosen]


def search_ranked(
    store: BaseStore,
    namespace: tuple[str, ...],
    query: str,
    limit: int,
    ranking: Ranking | None = None,
    filter: dict[str, Any] | None = None,
) -> list[SearchItem]:
    """One store search reordered by ``ranking``: shared by the agent's recall and the eval."""
    ranking = ranking or DEFAULT_RANKING
    hits = store.search(namespace, query=query, filter=filter, limit=limit * ranking.pool)
    return rerank(hits, query, limit, ranking)


DEFAULT_RANKING = Ranking()


def _age_days(item: Item, now: datetime) -> float:
    updated = item.updated_at if item.updated_at.tzinfo else item.updated_at.replace(tzinfo=UTC)
    return max(0.0, (now - updated).total_seconds() / 86_400)


def _rank(hits: Sequence[SearchItem]) -> list[SearchItem]:
    """Relevance first; a small bonus for recently written or read memories."""
    now = datetime.now(UTC)

    def score(hit: SearchItem) -> float:
        fresh: float = 0.5 ** (_age_days(hit, now) / RECENCY_HALF_LIFE_DAYS)
        return float(hit.score or 0.0) + RECENCY_WEIGHT * fresh

    return sorted(hits, key=score, reverse=True)


def _select(items: Sequence[Item], k: int, char_budget: int) -> list[RecalledFact]:
    """Current facts in order, until k or the budget is reached (the first always fits)."""
    facts: list[RecalledFact] = []
    used = 0
    for item in items:
        value = item.value
        text = str(value.get("text", "")).strip()
        if not text or value.get("status", "active") != "active":
            continue
        if used + len(text) > char_budget and facts:
            break
        facts.append(
            RecalledFact(
                key=item.key,
                text=text,
                score=getattr(item, "score", None),
                kind=str(value.get("kind", KIND_FACT)),
                valid_from=value.get("valid_from"),
                valid_to=value.get("valid_to"),
            )
        )
        used += len(text)
        if len(facts) >= k:
            break
    return facts


def recall(
    store: BaseStore,
    user_id: str,
    query: str,
    *,
    k: int = DEFAULT_K,
    char_budget: int = DEFAULT_CHAR_BUDGET,
) -> list[RecalledFact]:
    """Top-k current facts by meaning, keyword and recency, cut off at ``char_budget``."""
    if not query.strip():
        return []
    namespace = memories_namespace(user_id)
    if asks_about_me(query):
        return _select(store.search(namespace, filter=CURRENT, limit=k), k, char_budget)
    hits = store.search(namespace, query=query, filter=CURRENT, limit=k * CANDIDATES)
    return _select(_rank(hits), k, char_budget)


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
    namespace = memories_namespace(user_id)
    if asks_about_me(query):
        return _select(await store.asearch(namespace, filter=CURRENT, limit=k), k, char_budget)
    hits = await store.asearch(namespace, query=query, filter=CURRENT, limit=k * CANDIDATES)
    return _select(_rank(hits), k, char_budget)
