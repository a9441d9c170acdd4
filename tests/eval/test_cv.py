"""Leave-one-out tuning, diversity reranking, RRF, the embedding cache, duplicate turns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langgraph.store.base import PutOp, SearchItem
from langgraph.store.memory import InMemoryStore

from memshelf.embeddings import FakeEmbedder
from memshelf.eval import load, run_locomo
from memshelf.eval.cv import Candidate, cv_markdown, leave_one_out, rrf_hits, run_cv
from memshelf.eval.embcache import DiskCachedEmbeddings
from memshelf.eval.runner import distinct_text_batches, turn_store
from memshelf.memory.recall import Ranking, rerank
from memshelf.stores._query import reciprocal_rank_fusion
from tests.cli.helpers import run_cli

DUPES = Path(__file__).parent / "fixtures" / "locomo-dupes.json"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _hit(key: str, score: float, text: str, window: str | None = None) -> SearchItem:
    value = {"text": text, "dia_ids": [key]} | ({"window": window} if window else {})
    return SearchItem(("m",), key, value, NOW, NOW, score=score)


def test_duplicate_turns_run_with_every_baseline() -> None:
    """InMemoryStore 1.2.x raises on a batch with one text twice; LoCoMo repeats short turns."""
    convs = load(DUPES)
    texts = [t.text for t in convs[0].turns]
    assert texts.count("Thanks!") >= 5 and any(  # the fixture has what breaks the peer
        sum(t.session == s for t in convs[0].turns) == 1
        for s in {t.session for t in convs[0].turns}
    )
    report = run_locomo(convs, FakeEmbedder(64), 64, ks=(1, 5, 25))
    assert set(report["baselines"]) == {"bm25", "dense_inmemory", "bm25_doc", "dense_inmemory_doc"}
    # every turn was indexed, so with 25 results every piece of evidence is found
    for name in ("dense_inmemory", "dense_inmemory_doc"):
        assert report["baselines"][name]["recall"]["25"] == 1.0, name
    assert report["recall"]["25"] == 1.0


def test_distinct_text_batches_keep_every_put_and_never_repeat_a_text() -> None:
    ns = ("memories", "u")
    values = [
        {"text": "hi", "window": "a hi b"},
        {"text": "hi", "window": "c hi d"},
        {"text": "solo", "window": "solo"},  # window == own text: indexed by its text alone
        {"text": "a hi b"},
    ]
    ops = [PutOp(ns, f"k{i}", v) for i, v in enumerate(values)]
    batches = distinct_text_batches(ops)
    assert [op.key for b in batches for op in b] == ["k0", "k2", "k1", "k3"]
    for batch in batches:
        texts = [str(op.value[f]) for op in batch for f in (op.index or ["text", "window"])
                 if op.value and f in op.value]  # fmt: skip
        assert len(texts) == len(set(texts))
    solo = next(op for b in batches for op in b if op.key == "k2")
    assert solo.index == ["text"]
    store = InMemoryStore(index={"embed": FakeEmbedder(8), "dims": 8, "fields": ["text", "window"]})
    for batch in batches:
        store.batch(batch)
    assert len(store.search(ns, query="hi", limit=10)) == 4


def test_rerank_lets_a_new_item_past_a_near_copy() -> None:
    hits = [
        _hit("a", 0.90, "x", "ana adopted grey cat pixel sister porto"),
        _hit("b", 0.89, "y", "ana adopted grey cat pixel sister lisbon"),
        _hit("c", 0.80, "z", "ben rowing lessons river boat"),
    ]
    assert [h.key for h in rerank(hits, "q", 2, Ranking())] == ["a", "b"]
    assert [h.key for h in rerank(hits, "q", 2, Ranking(diversity=0.3))] == ["a", "c"]
    assert [h.key for h in rerank(hits, "q", 3, Ranking(diversity=0.3))] == ["a", "c", "b"]
    with pytest.raises(ValueError, match="diversity"):
        Ranking(diversity=2.0)
    with pytest.raises(ValueError, match="pool"):
        Ranking(pool=0)


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=1)
    assert [key for key, _ in fused] == ["a", "c", "b"]  # a: 1/2+1/3, c: 1/4+1/2, b: 1/3
    dense = [_hit("a", 0.9, "a"), _hit("b", 0.8, "b")]
    keyword = [_hit("b", 1.0, "b"), _hit("c", 0.0, "c")]  # c: no keyword match, left out
    out = rrf_hits(dense, keyword)
    assert [h.key for h in out] == ["b", "a"] and out[0].score == 1.0


def test_leave_one_out_scores_each_conversation_with_a_pick_made_without_it() -> None:
    def rows(*values: float) -> list[tuple[int, dict[int, float]]]:
        return [(1, {10: v}) for v in values]

    # "lucky" is best on the whole file only because of conversation c3
    table = {
        "steady": {"c1": rows(0.8), "c2": rows(0.8), "c3": rows(0.5)},
        "lucky": {"c1": rows(0.7), "c2": rows(0.7), "c3": rows(1.0)},
    }
    loo = leave_one_out(table, ["steady", "lucky"], [10])
    assert loo["tuned_on_all"] == "lucky"
    assert loo["picks"] == {"c1": "lucky", "c2": "lucky", "c3": "steady"}
    held = loo["held_out"]
    assert held["fold_mean"]["10"] == pytest.approx((0.7 + 0.7 + 0.5) / 3)
    assert held["fold_min"]["10"] == 0.5 and held["by_category"]["1"]["n"] == 3


def test_run_cv_end_to_end_on_the_fixture() -> None:
    grid = [Candidate("w0.3"), Candidate("mmr", ranking=Ranking(0.2, 2))]
    report = run_cv(load(DUPES), FakeEmbedder(64), 64, candidates=grid, ks=(1, 5))
    assert report["conversations"] == ["dupes-1", "dupes-2"]
    assert set(report["loo"]["picks"].values()) <= {"w0.3", "mmr"}
    assert report["loo"]["held_out"]["questions"] == 7  # category 5 left out
    assert set(report["baselines"]) == {"bm25", "dense_inmemory", "bm25_doc", "dense_inmemory_doc"}
    assert "tuned on the other conversations" in cv_markdown(report)
    with pytest.raises(ValueError, match="two conversations"):
        run_cv(load(DUPES)[:1], FakeEmbedder(64), 64)


class _Counting(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(16)
        self.docs = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.docs += len(texts)
        return super().embed_documents(texts)


def test_embedding_cache_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first = _Counting()
    cache = DiskCachedEmbeddings(first, 16, path)
    vecs = cache.embed_documents(["a cat", "a dog", "a cat"])
    assert first.docs == 2 and vecs[0] == vecs[2]
    cache.close()
    second = _Counting()
    again = DiskCachedEmbeddings(second, 16, path).embed_documents(["a dog", "a cat"])
    assert second.docs == 0
    assert again[0] == pytest.approx(vecs[1], abs=1e-6)
    assert again[1] == pytest.approx(vecs[0], abs=1e-6)
    other = _Counting()
    other.fingerprint = "another-model"
    DiskCachedEmbeddings(other, 16, path).embed_documents(["a cat"])
    assert other.docs == 1  # another model never reads these vectors


def test_cli_cv_and_no_baselines(tmp_path: Path) -> None:
    out = tmp_path / "cv.json"
    result = run_cli(
        "eval", "locomo", "--data", str(DUPES), "--cv", "--no-baselines", "--k", "1,5",
        "--json", str(out), "--embed-cache", str(tmp_path / "emb.sqlite"),
        data=tmp_path / "d", MEMSHELF_EMBEDDINGS="fake:64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tuned on the other conversations" in result.stdout
    report = json.loads(out.read_text())
    assert "baselines" not in report and report["loo"]["held_out"]["questions"] == 7
    assert (tmp_path / "emb.sqlite").stat().st_size > 0


class _Queries(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.queries: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_query(text)


def test_cv_searches_again_without_the_named_speaker_and_reports_the_earlier_grid() -> None:
    """An ``unnamed`` candidate costs one more search per question naming a speaker;
    ``before`` gets its own held-out estimate from the same searches."""
    embedder = _Queries()
    grid = [
        Candidate("w0.3"),
        Candidate("unnamed", ranking=Ranking(pool=2, subject_boost=0.2, unnamed_query=0.6)),
    ]
    report = run_cv(load(DUPES), embedder, 64, candidates=grid, ks=(1, 5), before=["w0.3"])
    assert "What is the name of cat" in embedder.queries  # "Ana's" gone
    assert "When did start rowing" in embedder.queries
    assert "What did the cat Pixel do?" in embedder.queries  # names no speaker: one search
    assert report["loo_before"]["picks"] == {"dupes-1": "w0.3", "dupes-2": "w0.3"}
    assert "earlier grid" in cv_markdown(report)


def test_turns_carry_their_session_for_the_group_prior() -> None:
    conv = load(DUPES)[0]
    with turn_store(conv, FakeEmbedder(16), 16) as store:
        hits = store.search(("memories", conv.sample_id), query="rowing", limit=3)
    assert {h.value["session"] for h in hits} <= {1, 2, 3} and hits[0].value["session"] == 3
