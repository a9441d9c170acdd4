"""The reranking shared by the agent's recall and the LoCoMo eval: a second search for
the query without the names it holds, and a prior for hits whose group holds others."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from langgraph.store.base import SearchItem

from memshelf.embeddings import LOCAL_DIMS, FakeEmbedder, shared_local_embedder
from memshelf.memory.recall import Ranking, merge_hits, rerank, search_ranked, unnamed_query
from memshelf.stores.sqlite import SqliteStore

NOW = datetime(2024, 1, 1, tzinfo=UTC)
NS = ("memories", "u1")


def _hit(key: str, score: float, **value: str) -> SearchItem:
    return SearchItem(NS, key, {"text": key, **value}, NOW, NOW, score=score)


class CountingEmbedder(FakeEmbedder):
    """The fake, counting embedder calls for queries; batches them like the local model."""

    def __init__(self) -> None:
        super().__init__(64)
        self.query_calls: list[list[str]] = []

    def embed_query(self, text: str) -> list[float]:
        self.query_calls.append([text])
        return super().embed_query(text)

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        self.query_calls.append(list(texts))
        return [super(CountingEmbedder, self).embed_query(t) for t in texts]


def _store(path: Path, emb: FakeEmbedder | None = None) -> SqliteStore:
    """A real SQLite file: five turns that say the name a lot, one about the thing asked.

    Dense only (keyword weight 0): the word "pottery" would find it by keyword alone."""
    emb = emb or FakeEmbedder(64)
    index = {"embed": emb, "dims": 64, "fields": ["text"]}
    store = SqliteStore(str(path), index=index, keyword_weight=0.0)  # type: ignore[arg-type]
    turns = [f"Melanie: Melanie here, Melanie says hello number {n}" for n in range(5)]
    turns.append("Melanie: I signed up for a pottery class with clay last week")
    for n, text in enumerate(turns):
        store.put(NS, f"t{n}", {"text": text, "speaker": "Melanie"})
    return store


def test_second_search_without_the_name_finds_what_only_it_finds(tmp_path: Path) -> None:
    question = "What Melanie pottery Melanie?"
    with _store(tmp_path / "shelf.sqlite") as store:
        plain = search_ranked(store, NS, question, 2, Ranking())
        assert "t5" not in [h.key for h in plain]  # the name's vector crowds it out
        both = search_ranked(store, NS, question, 2, Ranking(unnamed_query=1.0))
        assert "t5" in [h.key for h in both]
        assert len({h.key for h in both}) == len(both)  # merged, never twice


def test_known_subjects_embed_both_queries_in_one_call_with_the_same_hits(
    tmp_path: Path,
) -> None:
    question = "What Melanie pottery Melanie?"
    ranking = Ranking(unnamed_query=0.6, subject_boost=0.2)
    emb = CountingEmbedder()
    with _store(tmp_path / "shelf.sqlite", emb) as store:
        emb.query_calls.clear()
        alone = search_ranked(store, NS, question, 3, ranking)
        assert emb.query_calls == [[question], ["What pottery"]]  # one after the other
        store.clear_query_cache()
        emb.query_calls.clear()
        known = search_ranked(store, NS, question, 3, ranking, subjects=["Melanie Smith"])
        assert emb.query_calls == [[question, "What pottery"]]  # one call for both
        assert [(h.key, h.score) for h in known] == [(h.key, h.score) for h in alone]


def test_a_wrong_guess_costs_a_search_not_the_answer(tmp_path: Path) -> None:
    """A subject the hits do not carry is not stripped: the guessed search is dropped."""
    question = "What did Melanie and Bob make with pottery?"
    ranking = Ranking(unnamed_query=0.6)
    emb = CountingEmbedder()
    with _store(tmp_path / "shelf.sqlite", emb) as store:
        alone = search_ranked(store, NS, question, 3, ranking)
        store.clear_query_cache()
        emb.query_calls.clear()
        guessed = search_ranked(store, NS, question, 3, ranking, subjects=["Melanie", "Bob"])
        assert emb.query_calls == [
            [question, "What did and make with pottery"],
            ["What did and Bob make with pottery"],
        ]
        assert [(h.key, h.score) for h in guessed] == [(h.key, h.score) for h in alone]
        # no subject named in the question: one search, as without subjects
        emb.query_calls.clear()
        search_ranked(store, NS, "What pottery?", 3, ranking, subjects=["Bob"])
        assert emb.query_calls == [["What pottery?"]]


def test_unnamed_query_strips_only_the_hits_subjects() -> None:
    hits = [_hit("a", 0.9, speaker="Melanie"), _hit("b", 0.8, speaker="Caroline Smith")]
    assert unnamed_query("What does Melanie's sister do?", hits, "speaker") == (
        "What does sister do"
    )
    assert unnamed_query("Where did Caroline go?", hits, "speaker") == "Where did go"
    assert unnamed_query("Where did Bob go?", hits, "speaker") is None  # no name: no search
    assert unnamed_query("Melanie?", hits, "speaker") is None  # nothing left to search


def test_merge_mixes_both_scores_and_floors_a_missing_one() -> None:
    first = [_hit("a", 0.9), _hit("b", 0.5)]
    second = [_hit("b", 0.8), _hit("c", 0.7)]
    merged = merge_hits(first, second, 0.6)
    # a: 0.4*0.9 + 0.6*0.7 (second's floor); b: 0.4*0.5 + 0.6*0.8; c: 0.4*0.5 + 0.6*0.7
    assert [(h.key, round(float(h.score or 0), 2)) for h in merged] == [
        ("a", 0.78),
        ("b", 0.68),
        ("c", 0.62),
    ]


def test_group_prior_lifts_a_hit_whose_session_holds_other_good_hits() -> None:
    hits = [
        _hit("alone", 0.80, session="1"),
        _hit("near", 0.78, session="2"),
        _hit("near2", 0.75, session="2"),
        _hit("other", 0.30, session="3"),
        _hit("nogroup", 0.79),
    ]
    assert [h.key for h in rerank(hits, "q", 2, Ranking())] == ["alone", "nogroup"]
    ranked = rerank(hits, "q", 3, Ranking(group_boost=0.2, group_top=2))
    assert [h.key for h in ranked] == ["near", "near2", "alone"]  # alone: 0.8 + 0.2 * 0.8 / 2


def test_ranking_rejects_out_of_range_settings() -> None:
    with pytest.raises(ValueError, match="unnamed_query"):
        Ranking(unnamed_query=1.5)
    with pytest.raises(ValueError, match="group_boost"):
        Ranking(group_boost=-0.1)
    with pytest.raises(ValueError, match="group_top"):
        Ranking(group_top=0)


@pytest.mark.real_model
def test_local_model_batches_the_two_queries_without_moving_a_hit(tmp_path: Path) -> None:
    """The real embedder: both queries in one ONNX call give the vectors one call each
    gives, so the batched search ranks every hit exactly as the sequential one."""
    local = shared_local_embedder()
    questions = ["What did Melanie paint last year?", "What did paint last year"]
    assert np.array_equal(
        np.array(local.embed_queries(questions)),
        np.array([local.embed_query(q) for q in questions]),
    )
    index = {"embed": local, "dims": LOCAL_DIMS, "fields": ["text"]}
    with SqliteStore(str(tmp_path / "shelf.sqlite"), index=index) as store:  # type: ignore[arg-type]
        turns = [
            ("Melanie", "Melanie: I painted a lake at sunrise last year"),
            ("Caroline", "Caroline: Melanie, your painting is lovely"),
            ("Melanie", "Melanie: I ran a charity race for mental health"),
            ("Caroline", "Caroline: I went to an LGBTQ support group yesterday"),
        ]
        for n, (speaker, text) in enumerate(turns):
            store.put(NS, f"t{n}", {"text": text, "speaker": speaker})
        ranking = Ranking(pool=2, subject_boost=0.2, unnamed_query=0.6)
        alone = search_ranked(store, NS, questions[0], 2, ranking)
        store.clear_query_cache()
        known = search_ranked(store, NS, questions[0], 2, ranking, subjects=["Melanie", "Caroline"])
        assert [(h.key, h.score) for h in known] == [(h.key, h.score) for h in alone]
        assert known[0].key == "t0"
