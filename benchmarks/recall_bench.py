"""Recall-node overhead: query embedding + store search + prompt assembly, per turn.

    python benchmarks/recall_bench.py --memories 1000,100000 --turns 1000
    python benchmarks/recall_bench.py --corpus real --memories 100000 --turns 1000 \
        --backends sqlite-exact,sqlite --peer-turns 0

Memories are generated fact sentences embedded by the real local embedder
(the store does it on put); every turn's question is distinct, so no query
embedding is served from cache. The peer is the plain LangGraph approach:
InMemoryStore with the same embedder, searched the same way.

``--corpus real`` uses real sentences instead (``corpus.py``: docstrings, docs
and LoCoMo turns, embedded once by the same model and cached), with LoCoMo
questions and held-out sentences as the turns' messages (``--messages
questions``: the questions only); ``sqlite-exact`` is
the store with its approximate index turned off, the peer for ``sqlite``
(index on above ``AnnConfig.min_rows``). Each turn's recall also reports
whether its top 5 matched the exact store's (recall@5 against exact). With the
real corpus, ranking quality is measured too: LoCoMo evidence recall@5 / @10,
searching each LoCoMo question (untimed) for the dialogue turns its answer
cites, among all the memories. ``--ab-keywords`` times each turn of the
``sqlite`` backend twice, interleaved: with this code's keyword search and with
schema 4's (the namespace's tag, every word), so a busy machine loads both alike.
``--ab-overlap`` does the same with the query embedded while the store runs its
keyword search (``stores.base.QueryVectors``) against embedded first, then
searched (the code before; ``sequential_queries``).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.messages import HumanMessage
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from memshelf.agent.nodes import Nodes
from memshelf.embeddings import CachedDocuments, shared_local_embedder
from memshelf.eval.storebench import pct
from memshelf.llm.fake import rule_based_chat_model
from memshelf.namespaces import memories_namespace
from memshelf.stores import _query as q
from memshelf.stores.ann import AnnConfig
from memshelf.stores.base import Plan, QueryVectors
from memshelf.stores.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
from ann_bench import schema_4_keywords

SUBJECTS = ["Sukhveer", "The user", "Their team", "Their manager", "Their sister"]
VERBS = ["deploys on", "prefers", "uses", "is learning", "dislikes", "plans to try", "works with"]
OBJECTS = [
    "Fly.io",
    "Kubernetes",
    "Rust",
    "Postgres 16",
    "answers with code",
    "short emails",
    "ramen",
    "Berlin",
    "TypeScript",
    "Redis",
    "long walks",
    "vim",
    "AWS Lambda",
    "jazz",
    "Grafana",
    "SQLite",
    "Go",
    "climbing",
    "espresso",
    "Terraform",
]
QUESTIONS = [
    "Where do I deploy {o}?",
    "What do I think about {o}?",
    "Do I use {o} at work?",
    "Remind me what I said about {o}",
    "Which database do we pick for {o}?",
]


def fact(rng: random.Random, i: int) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (note {i})."


class PrecomputedDocuments(Embeddings):
    """Documents from the corpus cache (embedded earlier by the same model); queries and
    any other text go to the real model, so a turn still pays for its query embedding."""

    def __init__(self, inner: Embeddings, texts: list[str], mat: np.ndarray) -> None:
        self.inner = inner
        self.rows = {t: i for i, t in enumerate(texts)}
        self.mat = mat
        self.fingerprint = getattr(inner, "fingerprint", "precomputed")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if all(t in self.rows for t in texts):
            rows = [self.rows[t] for t in texts]
            return self.mat[rows].tolist()  # type: ignore[no-any-return]
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


class Workload:
    """Memories to store and messages to recall with: templated facts, or real sentences."""

    def __init__(self, kind: str, n: int, turns: int, messages: str = "mixed") -> None:
        self.kind, self.rng = kind, random.Random(n)
        if kind == "real":
            docs, mat, questions, _ = corpus.load(corpus_size(n, turns))
            self.docs, self.mat, self.questions = docs[:n], mat, questions
            held_out = docs[n : n + turns]
            if messages == "questions":
                self.messages = questions
            else:
                self.messages = [m for pair in zip(questions, held_out, strict=False) for m in pair]
                self.messages += held_out[len(questions) :]
            self.embedder: Embeddings = PrecomputedDocuments(shared_local_embedder(), docs, mat)
        else:
            self.docs = [fact(self.rng, i) for i in range(n)]
            self.messages, self.questions = [], []
            self.embedder = CachedDocuments(shared_local_embedder(), 384)

    def message(self, i: int) -> str:
        if self.kind == "real":
            return f"{self.messages[i % len(self.messages)]} #{i}"
        return self.rng.choice(QUESTIONS).format(o=self.rng.choice(OBJECTS)) + f" #{i}"


def corpus_size(n: int, turns: int) -> int:
    return max(n + turns + 1000, 102_000)


def fill(store: BaseStore, user: str, docs: list[str]) -> float:
    ns = memories_namespace(user)
    start = time.perf_counter()
    for base in range(0, len(docs), 1000):
        store.batch(
            [
                PutOp(ns, f"m{i}", {"text": docs[i]})
                for i in range(base, min(len(docs), base + 1000))
            ]
        )
    return time.perf_counter() - start


def top_keys(store: BaseStore, user: str, text: str) -> list[str]:
    return [h.key for h in store.search(memories_namespace(user), query=text, limit=5)]


def measure(
    store: BaseStore, user: str, work: Workload, turns: int, first: int, exact: BaseStore | None
) -> dict[str, float]:
    nodes = Nodes(rule_based_chat_model(), [], recall_k=5, max_rounds=1)
    config: Any = {"configurable": {"user_id": user, "thread_id": "bench"}}
    samples, same, compared = [], 0, 0
    for i in range(first, first + turns):
        question = work.message(i)
        state: Any = {"messages": [HumanMessage(question)]}
        start = time.perf_counter()
        update = nodes.recall(state, config, store=store)
        after: Any = {**state, **update}
        nodes.prompt(after)
        samples.append(time.perf_counter() - start)
        if exact is not None:
            got, want = top_keys(store, user, question), top_keys(exact, user, question)
            same += len(set(got) & set(want))
            compared += len(want)
    out = {"p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95), "turns": turns}
    if compared:
        out["recall_at_5_vs_exact"] = same / compared
    return out


@contextmanager
def sequential_queries(store: SqliteStore) -> Iterator[None]:
    """Queries embedded in full before the store's work starts, as before the overlap."""

    def sequential(plan: Plan) -> QueryVectors:
        found, missing = store._cached_queries(plan.queries)
        if missing and store.embeddings is not None:
            vectors = [store.embeddings.embed_query(t) for t in missing]
            found.update(store._remember_queries(missing, vectors))
        return QueryVectors(found)

    store._query_vectors = sequential  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store._query_vectors


def measure_ab(
    store: SqliteStore,
    user: str,
    work: Workload,
    turns: int,
    first: int,
    baseline_of: Callable[[], AbstractContextManager[None]],
) -> tuple[dict[str, float], dict[str, float]]:
    """(this code, the baseline ``baseline_of()`` sets up): each turn's recall timed with
    both, alternating which goes first, the query cache cleared before each (both embed)."""
    nodes = Nodes(rule_based_chat_model(), [], recall_k=5, max_rounds=1)
    config: Any = {"configurable": {"user_id": user, "thread_id": "bench"}}
    samples: dict[bool, list[float]] = {False: [], True: []}
    for i in range(first, first + turns):
        state: Any = {"messages": [HumanMessage(work.message(i))]}
        for baseline in (i % 2 == 0, i % 2 == 1):
            store.clear_query_cache()
            with baseline_of() if baseline else nullcontext():
                start = time.perf_counter()
                update = nodes.recall(state, config, store=store)
                after: Any = {**state, **update}
                nodes.prompt(after)
                samples[baseline].append(time.perf_counter() - start)
    new, old = (
        {"p50_ms": pct(samples[o], 50), "p95_ms": pct(samples[o], 95), "turns": turns}
        for o in (False, True)
    )
    return new, old


def evidence(work: Workload) -> list[tuple[str, set[str]]]:
    """(question, keys of the memories holding its evidence turns) for each LoCoMo question
    whose evidence is among the stored memories (real corpus only)."""
    if work.kind != "real" or not corpus.LOCOMO.exists():
        return []
    key_of = {text: f"m{i}" for i, text in enumerate(work.docs)}
    cited: list[set[str]] = []
    for conv in json.loads(corpus.LOCOMO.read_text()):
        turns = {
            t["dia_id"]: f"{t['speaker']}: {t['text']}"
            for name, session in conv["conversation"].items()
            if name.startswith("session_") and isinstance(session, list)
            for t in session
        }
        for qa in conv["qa"]:
            texts = (turns.get(e) for e in qa.get("evidence", []))
            cited.append({key_of[t] for t in texts if t in key_of})
    return [(text, keys) for text, keys in zip(work.questions, cited, strict=True) if keys]


def evidence_recall(
    store: BaseStore, user: str, cited: list[tuple[str, set[str]]]
) -> dict[str, float]:
    """Mean share of each question's evidence memories in the store's top 5 / top 10."""
    if not cited:
        return {}
    found = {5: 0.0, 10: 0.0}
    for question, keys in cited:
        ranked = [h.key for h in store.search(memories_namespace(user), query=question, limit=10)]
        for k in found:
            found[k] += len(keys & set(ranked[:k])) / len(keys)
    return {f"evidence_r@{k}": hits / len(cited) for k, hits in found.items()}


def wait_for_index(store: SqliteStore, user: str, work: Workload) -> float | None:
    """Seconds from the first search to the namespace's index being ready (None: no index)."""
    start = time.perf_counter()
    store.search(memories_namespace(user), query=work.message(-1), limit=5)
    block = store._block(q.encode_ns(memories_namespace(user)))
    if not block.wait_for_index(timeout=3600) and not block.indexed(store.ann):
        return None
    if not block.indexed(store.ann):
        return None
    return time.perf_counter() - start


def quality(result: dict[str, float]) -> str:
    if "evidence_r@5" not in result:
        return "-"
    return f"{100 * result['evidence_r@5']:.1f} / {100 * result['evidence_r@10']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", default="1000,100000")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--peer-turns", type=int, default=50)
    parser.add_argument("--corpus", choices=["templated", "real"], default="templated")
    parser.add_argument(
        "--messages",
        choices=["mixed", "questions"],
        default="mixed",
        help="real corpus: LoCoMo questions alternating with held-out sentences, or questions only",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,langgraph-memory",
        help="comma-separated: sqlite (approximate index above its threshold), sqlite-exact "
        "(index off), langgraph-memory (the peer)",
    )
    parser.add_argument(
        "--ab-keywords",
        action="store_true",
        help="sqlite backend: time every turn also with schema 4's keyword search (tag-scoped, "
        "every word), interleaved turn by turn, so both see the same machine load",
    )
    parser.add_argument(
        "--ab-overlap",
        action="store_true",
        help="sqlite backend: time every turn also with the query embedded before the "
        "search starts (no overlap with keyword search), interleaved turn by turn",
    )
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/recall_bench.json"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memshelf-recall-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # 100k items: ~250 MB
    user = "sukhveer"
    print(f"# {os.cpu_count()} cores, {platform.platform()}, local all-MiniLM-L6-v2 (ONNX int8)")
    print(f"# corpus: {args.corpus}; index threshold {AnnConfig().min_rows:,} vectors")
    print(
        "| memories | backend | fill s | index build s | recall p50 ms | recall p95 ms | turns "
        "| top-5 vs exact | p95 vs first | evidence R@5 / R@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    backends = args.backends.split(",")
    for n in (int(x) for x in args.memories.split(",")):
        work = Workload(args.corpus, n, args.turns, args.messages)
        cited = evidence(work)
        index: Any = {"embed": work.embedder, "dims": 384, "fields": ["text"]}
        path = tmp / f"r{n}.db"
        filled_at: float | None = None
        exact_peer: SqliteStore | None = None
        first_p95: float | None = None
        for name in backends:
            store: BaseStore
            built: float | None = None
            turns = args.turns
            if name == "langgraph-memory":
                store, turns = InMemoryStore(index=index), args.peer_turns
                if turns <= 0:
                    continue
                filled = fill(store, user, work.docs)
            else:
                config = AnnConfig(min_rows=None) if name == "sqlite-exact" else AnnConfig()
                store = SqliteStore(path, index=index, ann=config)
                if filled_at is None:
                    filled_at = fill(store, user, work.docs)
                filled = filled_at
                if name == "sqlite":
                    built = wait_for_index(store, user, work)
                elif exact_peer is None:
                    exact_peer = store
            measure(store, user, work, 3, 0, None)  # warm: model loaded, vectors cached
            label = {
                "sqlite": "memshelf sqlite",
                "sqlite-exact": "memshelf sqlite, exact (index off)",
                "langgraph-memory": "langgraph InMemoryStore",
            }[name]
            results: list[tuple[str, dict[str, float]]] = []
            if name == "sqlite" and args.ab_keywords:
                assert isinstance(store, SqliteStore)
                new, old = measure_ab(store, user, work, turns, 3, schema_4_keywords)
                new.update(evidence_recall(store, user, cited))
                with schema_4_keywords():
                    old.update(evidence_recall(store, user, cited))
                results = [
                    (f"{label} (A/B: this keyword search)", new),
                    (f"{label} (A/B: schema 4 keyword search)", old),
                ]
            elif name == "sqlite" and args.ab_overlap:
                assert isinstance(store, SqliteStore)
                new, old = measure_ab(
                    store, user, work, turns, 3, partial(sequential_queries, store)
                )
                new.update(evidence_recall(store, user, cited))
                with sequential_queries(store):
                    old.update(evidence_recall(store, user, cited))
                results = [
                    (f"{label} (A/B: embedding overlaps keyword search)", new),
                    (f"{label} (A/B: embedded first, then searched)", old),
                ]
            else:
                compare = exact_peer if name == "sqlite" else None
                result = measure(store, user, work, turns, 3, compare)
                if name != "langgraph-memory":
                    result.update(evidence_recall(store, user, cited))
                results = [(label, result)]
            for label, result in results:
                first_p95 = first_p95 or result["p95_ms"]
                report(rows, n, label, filled, built, turns, result, first_p95)
            if isinstance(store, SqliteStore) and store is not exact_peer:
                store.close()
        if exact_peer is not None:
            exact_peer.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


def report(
    rows: list[dict[str, Any]],
    n: int,
    label: str,
    filled: float,
    built: float | None,
    turns: int,
    result: dict[str, float],
    first_p95: float,
) -> None:
    """One table row, printed and kept for the JSON file."""
    rows.append(
        {"memories": n, "backend": label, "fill_s": filled, "index_build_s": built, **result}
    )
    agree = result.get("recall_at_5_vs_exact")
    print(
        f"| {n:,} | {label} | {filled:.0f} | "
        f"{'-' if built is None else f'{built:.1f}'} | {result['p50_ms']:.1f} | "
        f"{result['p95_ms']:.1f} | {turns} | {'-' if agree is None else f'{agree:.3f}'} "
        f"| {result['p95_ms'] / first_p95:.2f}x | {quality(result)} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
