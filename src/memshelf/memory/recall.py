"""Recall: the user's current facts most relevant to a message, within a size budget.

Superseded memories never come back here (they stay in history). A message that
asks what the agent knows about the user ("what do you remember about me?")
lists the shelf, newest first, instead of ranking it by similarity to the question.
Ties in relevance go to the more recently confirmed memory.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from langgraph.store.base import BaseStore, Item, SearchItem, SearchOp

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
    ``unnamed_query`` is the weight of a second search for the query without the
    subjects it names (0: no second search): "What activities does Melanie do?"
    searched as "What activities does do?" finds turns about the activities that
    the name's own vector pulled below the pool; the two scores are mixed
    ``(1 - unnamed_query)·named + unnamed_query·unnamed``. ``group_boost`` adds
    that share of the ``group_top`` best scores among hits in the item's
    ``group_field`` group (a conversation's session), summed over ``group_top``:
    evidence for one question tends to sit together, so a hit in a group holding
    other good hits is likelier to belong.
    """

    diversity: float = 0.0
    pool: int = 1
    subject_boost: float = 0.0
    subject_field: str = "speaker"
    fields: tuple[str, ...] = ("text", "window")
    unnamed_query: float = 0.0
    group_boost: float = 0.0
    group_field: str = "session"
    group_top: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"Ranking.diversity must be in [0, 1], got {self.diversity}.")
        if self.pool < 1:
            raise ValueError(f"Ranking.pool must be at least 1, got {self.pool}.")
        if not 0.0 <= self.subject_boost <= 1.0:
            raise ValueError(f"Ranking.subject_boost must be in [0, 1], got {self.subject_boost}.")
        if not 0.0 <= self.unnamed_query <= 1.0:
            raise ValueError(f"Ranking.unnamed_query must be in [0, 1], got {self.unnamed_query}.")
        if not 0.0 <= self.group_boost <= 1.0:
            raise ValueError(f"Ranking.group_boost must be in [0, 1], got {self.group_boost}.")
        if self.group_top < 1:
            raise ValueError(f"Ranking.group_top must be at least 1, got {self.group_top}.")


def _words(value: Mapping[str, Any], fields: Sequence[str]) -> frozenset[str]:
    return content_words(" ".join(str(value.get(f) or "") for f in fields))


def _first_name(value: Mapping[str, Any], field: str) -> str:
    return _first_word(str(value.get(field) or ""))


def _first_word(subject: str) -> str:
    words = subject.lower().split()
    return words[0] if words else ""


def unnamed_query(query: str, hits: Sequence[SearchItem], subject_field: str) -> str | None:
    """The query without the words naming a subject of ``hits`` (and their "'s"), or
    None when it names none or nothing else is left."""
    return _without_names(query, {n for h in hits if (n := _first_name(h.value, subject_field))})


def _without_names(query: str, names: Collection[str]) -> str | None:
    """The query without the words in ``names`` (lower-case first names, see unnamed_query)."""
    words = re.findall(r"[\w']+", query)
    kept = [w for w in words if w.lower().removesuffix("'s").removesuffix("'") not in names]
    if len(kept) == len(words) or not kept:
        return None
    return " ".join(kept)


def merge_hits(
    first: Sequence[SearchItem], second: Sequence[SearchItem], weight: float
) -> list[SearchItem]:
    """Both searches' hits once each, scored ``(1 - weight)·first + weight·second``; best
    first. An item missing from one list gets that list's lowest score (it ranked below
    all of them there), so it neither wins nor is lost for being found once."""
    one = {h.key: float(h.score or 0.0) for h in first}
    two = {h.key: float(h.score or 0.0) for h in second}
    floor_one = min(one.values(), default=0.0)
    floor_two = min(two.values(), default=0.0)
    out = []
    for hit in {h.key: h for h in [*second, *first]}.values():
        score = (1 - weight) * one.get(hit.key, floor_one) + weight * two.get(hit.key, floor_two)
        out.append(
            SearchItem(hit.namespace, hit.key, hit.value, hit.created_at, hit.updated_at, score)
        )
    return sorted(out, key=lambda h: -float(h.score or 0.0))


def _group_prior(
    hits: Sequence[SearchItem], base: Sequence[float], ranking: Ranking
) -> list[float]:
    """Per hit, the sum of the ``group_top`` best scores in its group over ``group_top``
    (0 without a group): a lone hit does not count as a group of good ones."""
    groups: dict[str, list[float]] = {}
    for hit, score in zip(hits, base, strict=True):
        group = hit.value.get(ranking.group_field)
        if group is not None:
            groups.setdefault(str(group), []).append(score)
    top = ranking.group_top
    prior = {g: sum(sorted(s, reverse=True)[:top]) / top for g, s in groups.items()}
    out = []
    for hit in hits:
        group = hit.value.get(ranking.group_field)
        out.append(prior[str(group)] if group is not None else 0.0)
    return out


def rerank(hits: Sequence[SearchItem], query: str, k: int, ranking: Ranking) -> list[SearchItem]:
    """The best k hits by score (plus the subject and group boosts) minus ``diversity``
    times their word overlap with the hits ranked above them."""
    base = [float(h.score or 0.0) for h in hits]
    if ranking.subject_boost > 0:
        named = {w.lower() for w in re.findall(r"\w+", query)}
        for i, hit in enumerate(hits):
            subject = _first_name(hit.value, ranking.subject_field)
            if subject and subject in named:
                base[i] += ranking.subject_boost
    if ranking.group_boost > 0:
        prior = _group_prior(hits, base, ranking)
        base = [b + ranking.group_boost * p for b, p in zip(base, prior, strict=True)]
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
    subjects: Collection[str] | None = None,
) -> list[SearchItem]:
    """One store search (two with ``unnamed_query``) reordered by ``ranking``: shared by
    the agent's recall and the eval.

    The second query depends on the first search's hits (the subjects they name), so
    on its own it waits for them: a second embedding and search after the first.
    ``subjects``, the names the caller knows the namespace's items carry (a
    conversation's speakers), let it be guessed up front: both queries go to the
    store in one batch, which embeds them in one embedder call and overlaps that
    with its keyword search. The guess is then checked against the first search's
    hits; a wrong one costs one more search, never a different answer."""
    ranking = ranking or DEFAULT_RANKING
    size = limit * ranking.pool
    guess = None
    if ranking.unnamed_query > 0 and subjects:
        guess = _without_names(query, {n for s in subjects if (n := _first_word(s))})
    guessed: list[SearchItem] = []
    if guess:
        ops = [SearchOp(namespace, filter, size, 0, text) for text in (query, guess)]
        hits, guessed = cast(list[list[SearchItem]], store.batch(ops))
    else:
        hits = store.search(namespace, query=query, filter=filter, limit=size)
    if ranking.unnamed_query > 0:
        other = unnamed_query(query, hits, ranking.subject_field)
        if other:
            more = (
                guessed
                if other == guess
                else store.search(namespace, query=other, filter=filter, limit=size)
            )
            hits = merge_hits(hits, more, ranking.unnamed_query)
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
