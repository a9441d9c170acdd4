"""``memshelf eval locomo``: replay conversations into fresh stores, ask, score retrieval.

Each conversation becomes one user's shelf in a fresh in-process memshelf store
(same engine as the file store). ``turns`` mode stores every dialogue turn as
an item carrying its ``dia_id``; ``facts`` mode stores what the memory engine
extracts from each turn (LLM). Every question of categories 1-4 is searched
through the store exactly as the agent's recall does, and evidence recall@k
is computed from the ``dia_id`` sources of the ranked results. Baselines in the
same run on the same data: BM25 over turns, and dense-only search with
LangGraph's InMemoryStore and the same embedder.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from memshelf.eval.bm25 import BM25
from memshelf.eval.locomo import Conversation, Turn
from memshelf.eval.metrics import evidence_recall, percentile
from memshelf.memory import Fact, extract_facts
from memshelf.memory.recall import Ranking, search_ranked
from memshelf.namespaces import memories_namespace
from memshelf.stores.sqlite import SqliteStore

Progress = Callable[[int], None]
# The ranking `memshelf eval locomo` uses unless told otherwise: chosen by
# leave-one-conversation-out on locomo-dev (benchmarks/locomo_cv.py, BENCHMARKS.md):
# a second search for the question without the speakers it names, mixed 0.4/0.6 with
# the first; +0.2 for turns of the speaker a question names; 75 candidates per search
# for the top 25; keyword weight 0.2 in the store's fusion.
LOCOMO_RANKING = Ranking(pool=3, subject_boost=0.2, unnamed_query=0.6)
LOCOMO_KEYWORD_WEIGHT = 0.2


@dataclass(frozen=True)
class TurnFormat:
    """How a dialogue turn is written into the store (the variants measured)."""

    speaker: bool = True
    caption: bool = True
    date: bool = True  # measured on locomo-dev: +1.7 R@5, +2.5 R@10 over plain turns
    context: int = 0  # previous turns of the same session prepended as context
    window: int = 2  # a second vector per turn over it and 2 neighbours each side (+6.9 R@5)

    def render(self, turns: Sequence[Turn], i: int) -> str:
        turn = turns[i]
        text = f"{turn.speaker}: {turn.text}" if self.speaker else turn.text
        if self.caption and turn.caption:
            text += f" [shares a photo: {turn.caption}]"
        if self.context:
            before = [t for t in turns[max(0, i - self.context) : i] if t.session == turn.session]
            text = (
                " ".join(f"{t.speaker}: {t.text}" for t in before) + (" " if before else "") + text
            )
        if self.date and turn.date:
            text = f"({turn.date}) {text}"
        return text

    def render_window(self, turns: Sequence[Turn], i: int) -> str | None:
        if not self.window:
            return None
        turn = turns[i]
        near = turns[max(0, i - self.window) : i + self.window + 1]
        text = " ".join(f"{t.speaker}: {t.text}" for t in near if t.session == turn.session)
        return f"({turn.date}) {text}" if self.date and turn.date else text

    @property
    def fields(self) -> list[str]:
        return ["text", "window"] if self.window else ["text"]


@dataclass
class Item:
    text: str
    sources: list[str]
    window: str | None = None
    speaker: str | None = None
    session: int | None = None


def turn_items(conv: Conversation, fmt: TurnFormat) -> list[Item]:
    return [
        Item(
            fmt.render(conv.turns, i),
            [t.dia_id],
            fmt.render_window(conv.turns, i),
            t.speaker,
            t.session,
        )
        for i, t in enumerate(conv.turns)
    ]


def turn_facts(
    conv: Conversation, model: BaseChatModel, sessions: int | None
) -> Iterator[tuple[Turn, Fact]]:
    """Each turn of the first ``sessions`` sessions (all if None), in order, with the facts
    the memory engine extracts from it (its speaker as the user, the session date as the
    message date). Shared by ``eval locomo`` and ``eval qa`` facts modes."""
    wanted = sorted({t.session for t in conv.turns})[:sessions] if sessions else None
    for turn in conv.turns:
        if wanted is not None and turn.session not in wanted:
            continue
        for fact in extract_facts(model, turn.text, at=turn.date, speaker=turn.speaker):
            yield turn, fact


def fact_items(conv: Conversation, model: BaseChatModel, sessions: int | None) -> list[Item]:
    """What the memory engine extracts from each turn, traced to the turn's dia_id."""
    return [
        Item(f"({turn.date}) {fact.text}", [turn.dia_id], speaker=turn.speaker)
        for turn, fact in turn_facts(conv, model, sessions)
    ]


def _load(store: BaseStore, user: str, items: list[Item]) -> None:
    """One batch of puts; for InMemoryStore, batches in which no indexed text repeats.

    LangGraph's InMemoryStore (1.2.x) fails on a batch holding two items with the same
    text ("Number of embeddings (n) does not match number of indices (n+1)"): it embeds
    each distinct text once, then pairs vectors and items by position. LoCoMo repeats
    short turns ("Thanks!"), so its puts are split into batches in which no text (of any
    indexed field) occurs twice: every item is stored and embedded exactly as before,
    so what it measures is unchanged.
    """
    ns = memories_namespace(user)
    values: list[dict[str, Any]] = [{"text": it.text, "dia_ids": it.sources} for it in items]
    for value, it in zip(values, items, strict=True):
        if it.session is not None:
            value["session"] = it.session
        if it.window:
            value["window"] = it.window
        if it.speaker:
            value["speaker"] = it.speaker
    ops = [PutOp(ns, f"i{n}", v, index=None, ttl=None) for n, v in enumerate(values)]
    if not isinstance(store, InMemoryStore):
        store.batch(ops)
        return
    for part in distinct_text_batches(ops):
        store.batch(part)


def distinct_text_batches(ops: Sequence[PutOp]) -> list[list[PutOp]]:
    """The puts in order, split so that no batch holds one text twice (see :func:`_load`).

    An item whose window equals its own text (a one-turn session) is indexed by its
    text alone: the same vector, so the same score."""
    batches: list[tuple[set[str], list[PutOp]]] = []
    for op in ops:
        value = op.value or {}
        fields = [f for f in ("text", "window") if value.get(f)]
        if len(fields) == 2 and value["text"] == value["window"]:
            fields = ["text"]
            op = PutOp(op.namespace, op.key, op.value, index=fields, ttl=op.ttl)
        texts = {str(value[f]) for f in fields}
        batch = next((b for b in batches if b[0].isdisjoint(texts)), None)
        if batch is None:
            batch = (set(), [])
            batches.append(batch)
        batch[0].update(texts)
        batch[1].append(op)
    return [part for _, part in batches]


def _search(
    store: BaseStore,
    user: str,
    question: str,
    k: int,
    ranking: Ranking | None = None,
    speakers: Sequence[str] = (),
) -> list[list[str]]:
    """The sources of the top k hits; ``speakers`` (the conversation's) let the second
    search go out with the first (see ``search_ranked``)."""
    hits = search_ranked(
        store, memories_namespace(user), question, k, ranking, subjects=[s for s in speakers if s]
    )
    return [list(h.value.get("dia_ids", [])) for h in hits]


class _QueryMemo(Embeddings):
    """One query vector per question for every baseline store (their latency is not reported)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.memo: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if text not in self.memo:
            self.memo[text] = self.inner.embed_query(text)
        return self.memo[text]


BASELINES = ("bm25", "dense_inmemory", "bm25_doc", "dense_inmemory_doc")


def baseline_rankings(
    conv: Conversation, fmt: TurnFormat, embedder: Embeddings, dims: int, top: int
) -> dict[str, list[list[list[str]]]]:
    """Per baseline, per scored question: the sources of its top results.

    ``bm25`` and ``dense_inmemory`` see raw ``speaker: text`` turns, as the published
    numbers do; the ``_doc`` twins see the very texts memshelf indexes (date, and the
    window of neighbouring turns as a second field), so a comparison can tell the
    document format from the ranking."""
    user = conv.sample_id
    queries = _QueryMemo(embedder)
    raw = turn_items(conv, TurnFormat(date=False, window=0))
    doc = turn_items(conv, fmt)
    out: dict[str, list[list[list[str]]]] = {name: [] for name in BASELINES}
    for suffix, items, fields in (("", raw, ["text"]), ("_doc", doc, fmt.fields)):
        dense = InMemoryStore(index={"embed": queries, "dims": dims, "fields": fields})
        _load(dense, user, items)
        bm25 = BM25(["\n".join(t for t in (it.text, it.window) if t) for it in items])
        for q in conv.scored_questions():
            out["dense_inmemory" + suffix].append(_search(dense, user, q.question, top))
            out["bm25" + suffix].append([items[i].sources for i in bm25.top(q.question, top)])
    return out


def turn_store(
    conv: Conversation,
    embedder: Embeddings,
    dims: int,
    fmt: TurnFormat | None = None,
    keyword_weight: float | None = None,
) -> SqliteStore:
    """A fresh in-process store holding one conversation's turns on the user ``sample_id``."""
    fmt = fmt or TurnFormat()
    options: dict[str, Any] = {} if keyword_weight is None else {"keyword_weight": keyword_weight}
    index: Any = {"embed": embedder, "dims": dims, "fields": fmt.fields}
    store = SqliteStore(":memory:", index=index, **options)
    _load(store, conv.sample_id, turn_items(conv, fmt))
    return store


class Scores:
    """recall@k per question, grouped overall and by category."""

    def __init__(self, ks: Sequence[int]) -> None:
        self.ks = list(ks)
        self.rows: list[tuple[int, dict[int, float]]] = []

    def add(self, category: int, evidence: Sequence[str], ranked: Sequence[Sequence[str]]) -> None:
        self.rows.append((category, {k: evidence_recall(evidence, ranked, k) for k in self.ks}))

    def summary(self) -> dict[str, Any]:
        def mean(rows: list[dict[int, float]]) -> dict[str, float]:
            return {str(k): sum(r[k] for r in rows) / len(rows) if rows else 0.0 for k in self.ks}

        by_cat: dict[int, list[dict[int, float]]] = defaultdict(list)
        for cat, row in self.rows:
            by_cat[cat].append(row)
        return {
            "recall": mean([r for _, r in self.rows]),
            "by_category": {str(c): mean(rows) for c, rows in sorted(by_cat.items())},
        }


def run_locomo(
    conversations: Sequence[Conversation],
    embedder: Embeddings,
    dims: int,
    *,
    ks: Sequence[int] = (5, 10, 25),
    mode: str = "turns",
    fmt: TurnFormat | None = None,
    model: BaseChatModel | None = None,
    limit_sessions: int | None = None,
    keyword_weight: float | None = None,
    ranking: Ranking | None = None,
    baselines: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evidence recall@k for memshelf (and the baselines) over the given conversations."""
    fmt = fmt or TurnFormat()
    ranking = ranking or LOCOMO_RANKING
    keyword_weight = LOCOMO_KEYWORD_WEIGHT if keyword_weight is None else keyword_weight
    top = max(ks)
    ours = Scores(ks)
    base = {name: Scores(ks) for name in BASELINES}
    latencies: list[float] = []
    questions = 0
    options: dict[str, Any] = {} if keyword_weight is None else {"keyword_weight": keyword_weight}
    index: Any = {"embed": embedder, "dims": dims, "fields": fmt.fields}
    for conv in conversations:
        if mode == "facts":
            if model is None:
                raise ValueError("facts mode needs a chat model")
            items = fact_items(conv, model, limit_sessions)
        else:
            items = turn_items(conv, fmt)
        user = conv.sample_id
        with SqliteStore(":memory:", index=index, **options) as store:
            _load(store, user, items)
            for q in conv.scored_questions():
                start = time.perf_counter()
                ranked = _search(store, user, q.question, top, ranking, conv.speakers)
                latencies.append(time.perf_counter() - start)
                ours.add(q.category, q.evidence, ranked)
                questions += 1
                if progress:
                    progress(1)
        if baselines:
            scored = conv.scored_questions()
            for name, rows in baseline_rankings(conv, fmt, embedder, dims, top).items():
                for q, ranked in zip(scored, rows, strict=True):
                    base[name].add(q.category, q.evidence, ranked)
    report: dict[str, Any] = {
        "mode": mode,
        "questions": questions,
        **ours.summary(),
        "latency_ms": {
            "p50": percentile(latencies, 50) * 1000,
            "p95": percentile(latencies, 95) * 1000,
        },
        "format": fmt.__dict__,
        "keyword_weight": keyword_weight,
        "ranking": {
            "diversity": ranking.diversity,
            "pool": ranking.pool,
            "subject_boost": ranking.subject_boost,
            "unnamed_query": ranking.unnamed_query,
            "group_boost": ranking.group_boost,
        },
    }
    if baselines:
        report["baselines"] = {name: scores.summary() for name, scores in base.items()}
    return report
