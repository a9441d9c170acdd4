"""The approximate index behind big namespaces: same answers as the exact scan, never stale.

A low ``AnnConfig.min_rows`` puts a few hundred vectors through the index, so
these run in seconds; ``benchmarks/ann_bench.py`` measures it at 100k.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from memshelf.errors import ConfigurationError
from memshelf.stores import _query as q
from memshelf.stores import sqlite as sqlite_store
from memshelf.stores.ann import AnnConfig
from memshelf.stores.sqlite import SqliteStore
from memshelf.stores.vectors import VectorBlock

DIMS = 48
NS = ("memories", "u1")
SMALL = AnnConfig(min_rows=200)


class LookupEmbedder(Embeddings):
    """Seeded clustered vectors looked up by text ("doc 17", "query 3"): real-looking
    structure (topics), no model, and the test knows every vector."""

    def __init__(self, docs: int = 800, queries: int = 60, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((docs // 20, DIMS))
        mat = centres[rng.integers(0, len(centres), docs)] + 0.7 * rng.standard_normal((docs, DIMS))
        self.docs = (mat / np.linalg.norm(mat, axis=1, keepdims=True)).astype(np.float32)
        picks = rng.integers(0, docs, queries)
        qmat = self.docs[picks] + 0.4 * rng.standard_normal((queries, DIMS))
        self.queries = (qmat / np.linalg.norm(qmat, axis=1, keepdims=True)).astype(np.float32)
        self.extra: dict[str, np.ndarray] = {}

    def vector(self, text: str) -> np.ndarray:
        kind, _, number = text.partition(" ")
        if text in self.extra:
            return self.extra[text]
        return (self.docs if kind == "doc" else self.queries)[int(number)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text).tolist()


def _store(path: Path, embed: Embeddings, ann: AnnConfig, **kw: Any) -> SqliteStore:
    index: Any = {"embed": embed, "dims": DIMS, "fields": ["text"]}
    return SqliteStore(path, index=index, ann=ann, keyword_weight=kw.pop("keyword_weight", 0.0))


def _fill(store: SqliteStore, count: int) -> None:
    store.batch(
        [_put(f"k{i}", f"doc {i}") for i in range(count)]  # type: ignore[misc]
    )


def _put(key: str, text: str) -> Any:
    from langgraph.store.base import PutOp

    return PutOp(NS, key, {"text": text})


def _top(store: SqliteStore, query: str, limit: int = 10, offset: int = 0) -> list[str]:
    return [h.key for h in store.search(NS, query=query, limit=limit, offset=offset)]


def _block(store: SqliteStore) -> VectorBlock:
    return store._block(q.encode_ns(NS))


@pytest.fixture
def asked() -> Any:
    """Counts searches answered from an index (``VectorBlock.candidates``)."""
    calls = {"n": 0}
    original = VectorBlock.candidates

    def counting(self: VectorBlock, query: np.ndarray, count: int) -> Any:
        calls["n"] += 1
        return original(self, query, count)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VectorBlock, "candidates", counting)
        yield calls


def _exact(embed: LookupEmbedder, count: int, query: np.ndarray, k: int = 10) -> set[str]:
    sims = embed.docs[:count] @ query
    return {f"k{i}" for i in np.argsort(-sims)[:k]}


def test_indexed_search_finds_the_exact_top_10(tmp_path: Path, asked: Any) -> None:
    embed = LookupEmbedder()
    store = _store(tmp_path / "a.db", embed, SMALL)
    _fill(store, 600)
    hits = 0
    for i in range(len(embed.queries)):
        got = _top(store, f"query {i}")
        assert len(got) == 10
        hits += len(set(got) & _exact(embed, 600, embed.queries[i]))
    assert _block(store).indexed(store.ann), "600 rows over min_rows=200 should use the index"
    assert asked["n"] >= len(embed.queries)
    assert hits / (10 * len(embed.queries)) >= 0.98
    store.close()


def test_keyword_fusion_matches_the_exact_store(tmp_path: Path, asked: Any) -> None:
    embed = LookupEmbedder()
    query = embed.queries[5]
    side = embed.docs[0] - (embed.docs[0] @ query) * query  # orthogonal to the query:
    embed.extra["zebra crossing notes"] = side / np.linalg.norm(side)  # no dense candidate
    embed.extra["zebra query 5"] = query  # but the word "zebra" is a keyword hit
    ann = _store(tmp_path / "k.db", embed, SMALL, keyword_weight=0.6)
    _fill(ann, 800)  # over 8x the candidate pool, so the index is asked
    ann.put(NS, "zebra", {"text": "zebra crossing notes"})
    exact = _store(tmp_path / "k.db", embed, AnnConfig(min_rows=None), keyword_weight=0.6)
    dense_rank = int((embed.docs @ query > 0).sum())
    assert dense_rank > 64, "the zebra item must lie outside the index's candidate pool"
    assert _top(exact, "zebra query 5")[0] == "zebra"
    assert _top(ann, "zebra query 5") == _top(exact, "zebra query 5")
    same = 0
    for i in range(1, 30):
        same += len(set(_top(ann, f"query {i}")) & set(_top(exact, f"query {i}")))
    assert _block(ann).indexed(ann.ann) and not _block(exact).indexed(exact.ann)
    assert asked["n"] >= 30
    assert same / (10 * 29) >= 0.98
    ann.close()
    exact.close()


def test_deleted_and_replaced_items_are_never_returned(tmp_path: Path) -> None:
    embed = LookupEmbedder()
    store = _store(tmp_path / "d.db", embed, SMALL)
    _fill(store, 600)
    _top(store, "query 0")
    assert _block(store).indexed(store.ann)
    gone = [f"k{i}" for i in range(0, 600, 3)]
    for key in gone:
        store.delete(NS, key)
    embed.extra["moved"] = -embed.docs[1]  # k1 now points the other way
    store.put(NS, "k1", {"text": "moved"})
    for i in range(0, 600, 3):
        got = _top(store, f"doc {i}")  # the deleted item's own vector as the query
        assert not set(got) & set(gone), got
    assert "k1" not in _top(store, "doc 1", limit=50)
    assert _top(store, "moved", limit=1) == ["k1"]
    assert _block(store).indexed(store.ann)
    store.close()


def test_items_added_after_the_build_are_found(tmp_path: Path) -> None:
    embed = LookupEmbedder()
    store = _store(tmp_path / "n.db", embed, SMALL)
    _fill(store, 400)
    _top(store, "query 0")
    assert _block(store).indexed(store.ann)
    store.batch([_put(f"k{i}", f"doc {i}") for i in range(400, 800)])
    for i in range(400, 800, 7):
        assert _top(store, f"doc {i}", limit=1) == [f"k{i}"]
    store.close()


def test_writes_during_a_background_build_are_caught_up() -> None:
    embed = LookupEmbedder()
    config = AnnConfig(min_rows=200, sync_build_rows=100)
    block = VectorBlock(DIMS)
    block.add(np.arange(500, dtype=np.int64), embed.docs[:500])
    assert not block.indexed(config)  # the build started in the background
    for item in range(0, 100):
        block.remove(item)
    block.add(np.arange(500, 800, dtype=np.int64), embed.docs[500:800])
    assert block.wait_for_index(timeout=60)
    assert block.indexed(config)
    for item in list(range(0, 100, 9)) + list(range(500, 800, 13)):
        ids, _ = block.candidates(embed.docs[item], 20)
        assert (item >= 100) == (item in ids.tolist())
        assert not set(ids.tolist()) & set(range(100))


def test_compaction_keeps_the_index_in_step() -> None:
    embed = LookupEmbedder()
    block = VectorBlock(DIMS)
    block.add(np.arange(800, dtype=np.int64), embed.docs)
    assert block.indexed(SMALL)
    for item in range(0, 800, 2):  # half dead: the matrix compacts, rows move
        block.remove(item)
    assert block.live_rows == 400
    for item in range(1, 800, 16):
        ids, sims = block.candidates(embed.docs[item], 10)
        assert ids[0] == item and sims[0] == pytest.approx(1.0, abs=1e-5)
        assert all(i % 2 == 1 for i in ids.tolist())


def test_pages_deep_in_the_ranking_match_the_exact_scan(tmp_path: Path) -> None:
    embed = LookupEmbedder()
    ann = _store(tmp_path / "p.db", embed, SMALL)
    _fill(ann, 800)
    exact = _store(tmp_path / "p.db", embed, AnnConfig(min_rows=None))
    pages = [_top(ann, "query 3", limit=20, offset=o) for o in range(0, 200, 20)]
    flat = [k for page in pages for k in page]
    assert len(flat) == len(set(flat)) == 200
    want = [k for o in range(0, 200, 20) for k in _top(exact, "query 3", limit=20, offset=o)]
    assert len(set(flat) & set(want)) >= 0.98 * 200
    ann.close()
    exact.close()


def test_another_connections_commits_reach_the_index(tmp_path: Path) -> None:
    embed = LookupEmbedder()
    mine = _store(tmp_path / "o.db", embed, SMALL)
    theirs = _store(tmp_path / "o.db", embed, AnnConfig(min_rows=None))
    _fill(mine, 600)
    _top(mine, "query 0")
    block = _block(mine)
    assert block.indexed(mine.ann)
    theirs.batch([_put(f"k{i}", f"doc {i}") for i in range(600, 700)])
    for i in range(0, 50):
        theirs.delete(NS, f"k{i}")
    for i in range(600, 700, 9):
        assert _top(mine, f"doc {i}", limit=1) == [f"k{i}"]
    for i in range(0, 50, 5):
        assert not {f"k{j}" for j in range(50)} & set(_top(mine, f"doc {i}"))
    assert _block(mine) is block and block.indexed(mine.ann)  # caught up, not rebuilt
    mine.close()
    theirs.close()


def test_a_reload_after_another_connection_rebuilds_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CHANGES_KEPT", 3)  # mine falls behind the log
    embed = LookupEmbedder()
    mine = _store(tmp_path / "r.db", embed, SMALL)
    theirs = _store(tmp_path / "r.db", embed, AnnConfig(min_rows=None))
    _fill(mine, 500)
    _top(mine, "query 0")
    old = _block(mine)
    assert old.indexed(mine.ann)
    theirs.batch([_put(f"k{i}", f"doc {i}") for i in range(500, 800)])
    for i in range(0, 100):
        theirs.delete(NS, f"k{i}")
    hits = 0
    for i in range(len(embed.queries)):
        got = _top(mine, f"query {i}")
        assert not {f"k{j}" for j in range(100)} & set(got)
        want = embed.docs[100:800] @ embed.queries[i]
        hits += len(set(got) & {f"k{j + 100}" for j in np.argsort(-want)[:10]})
    new = _block(mine)
    assert new is not old and new.indexed(mine.ann)
    assert hits / (10 * len(embed.queries)) >= 0.98
    mine.close()
    theirs.close()


def test_a_prefix_search_mixes_indexed_and_exact_namespaces(tmp_path: Path) -> None:
    embed = LookupEmbedder()
    store = _store(tmp_path / "m.db", embed, SMALL)
    _fill(store, 600)  # ("memories", "u1"): indexed
    store.put(("memories", "u2"), "near", {"text": "query 4"})  # small: exact
    got = [h.key for h in store.search(("memories",), query="query 4", limit=5)]
    assert got[0] == "near" and len(got) == 5
    store.close()


def test_an_index_below_min_recall_leaves_the_namespace_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((3000, 384)).astype(np.float32)  # near-random: HNSW's worst case
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    strict = AnnConfig(
        min_rows=100,
        sync_build_rows=10_000,
        connectivity=4,
        expansion_add=8,
        expansion_search=8,
        min_recall=1.0,
    )
    block = VectorBlock(384)
    block.add(np.arange(3000, dtype=np.int64), noise)
    assert not block.indexed(strict)  # built, checked, refused
    assert not block.indexed(strict)  # and not rebuilt on every search
    ids, sims = block.scores(noise[5])
    assert ids[np.argmax(sims)] == 5
    fine = VectorBlock(384)
    fine.add(np.arange(3000, dtype=np.int64), noise)
    lenient = AnnConfig(min_rows=100, sync_build_rows=10_000, min_recall=0.5)
    assert fine.indexed(lenient)  # the same data passes a lower bar


@pytest.mark.parametrize(
    ("config", "word"),
    [
        ({"min_rows": 0}, "min_rows"),
        ({"connectivity": 1}, "connectivity"),
        ({"min_recall": 1.5}, "min_recall"),
    ],
)
def test_bad_index_settings_are_refused(config: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigurationError, match=word):
        AnnConfig(**config)


def test_ann_min_rows_setting_reaches_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asked: Any
) -> None:
    """MEMSHELF_ANN_MIN_ROWS sets when open_store's SQLite store indexes a namespace; 0 = never."""
    from memshelf.config import Settings
    from memshelf.stores import open_store

    embed = LookupEmbedder()
    index: Any = {"embed": embed, "dims": DIMS, "fields": ["text"]}
    monkeypatch.setenv("MEMSHELF_ANN_MIN_ROWS", "200")
    with open_store(str(tmp_path / "a.db"), settings=Settings(), index=index, ttl=None) as store:
        assert isinstance(store, SqliteStore)
        _fill(store, 600)
        _top(store, "query 0")
        assert store.ann == AnnConfig(min_rows=200)
        assert _block(store).indexed(store.ann) and asked["n"] == 1
    monkeypatch.setenv("MEMSHELF_ANN_MIN_ROWS", "0")
    with open_store(str(tmp_path / "a.db"), settings=Settings(), index=index, ttl=None) as store:
        assert isinstance(store, SqliteStore)
        assert store.ann.min_rows is None
        assert len(_top(store, "query 0")) == 10
        assert not _block(store).indexed(store.ann) and asked["n"] == 1
    with pytest.raises(ValueError, match="ann_min_rows"):
        Settings(ann_min_rows=-1)


SUBJECTS = ["Maria", "Jon", "Aiko", "Priya", "Tomas", "Grace", "Olu", "Lena", "Ravi", "Chen"]
PREDICATES = [
    "prefers {o} for side projects",
    "is learning {o} after work",
    "stopped using {o} last month",
    "recommends {o} to new colleagues",
    "wants a reminder about {o} on Fridays",
    "argued with a friend about {o}",
]
OBJECTS = [
    "Postgres", "Rust", "climbing", "espresso", "Kubernetes", "jazz records", "the piano",
    "sourdough baking", "Lisbon trips", "chess openings", "Terraform", "bird watching",
    "vintage cameras", "marathon training",
]  # fmt: skip


@pytest.mark.real_model
def test_real_embedder_indexed_top_10_matches_exact(tmp_path: Path, asked: Any) -> None:
    from memshelf.embeddings import shared_local_embedder

    facts = [
        f"{s} {p.format(o=o)}." for s in SUBJECTS for p in PREDICATES for o in OBJECTS
    ]  # 840 distinct sentences: over 8x the candidate pool, so the index is asked
    index: Any = {"embed": shared_local_embedder(), "dims": 384, "fields": ["text"]}
    ann = SqliteStore(tmp_path / "real.db", index=index, ann=AnnConfig(min_rows=300))
    ann.batch([_put(f"f{i}", text) for i, text in enumerate(facts)])
    exact = SqliteStore(tmp_path / "real.db", index=index, ann=AnnConfig(min_rows=None))
    questions = [f"What does {s} think about {o}?" for s in SUBJECTS[:4] for o in OBJECTS[:6]]
    same = 0
    for question in questions:
        got, want = _top(ann, question), _top(exact, question)
        same += len(set(got) & set(want))
    assert _block(ann).indexed(ann.ann) and not _block(exact).indexed(exact.ann)
    assert asked["n"] >= len(questions)
    assert same / (10 * len(questions)) >= 0.98
    ann.close()
    exact.close()
