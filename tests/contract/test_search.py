"""Semantic and keyword search: LangGraph's index config, per-put index options, scores."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from langgraph.store.base import BaseStore

from tests.contract.conftest import StoreFactory, fake_index


def _seed(store: BaseStore) -> None:
    store.put(("m", "u"), "deploy", {"text": "I deploy my apps on fly io"})
    store.put(("m", "u"), "food", {"text": "my favourite food is ramen"})
    store.put(("m", "u"), "code", {"text": "I prefer answers with code"})


def test_semantic_search_ranks_by_meaning(store: BaseStore) -> None:
    _seed(store)
    hits = store.search(("m", "u"), query="where do I deploy apps", limit=3)
    assert hits[0].key == "deploy"
    assert all(h.score is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)  # type: ignore[misc]
    assert store.search(("m", "u"), query="favourite food", limit=1)[0].key == "food"


def test_index_false_items_are_stored_but_not_scored(store: BaseStore) -> None:
    _seed(store)
    store.put(("m", "u"), "secret", {"text": "deploy apps on fly io"}, index=False)
    hits = store.search(("m", "u"), query="deploy apps fly io", limit=10)
    scored = [h.key for h in hits if h.score is not None]
    assert "secret" not in scored
    assert store.get(("m", "u"), "secret") is not None


def test_per_put_index_fields(store: BaseStore) -> None:
    store.put(
        ("d",), "a", {"text": "unrelated words", "title": "deploy on fly io"}, index=["title"]
    )
    store.put(("d",), "b", {"text": "ramen noodles"})
    assert store.search(("d",), query="deploy fly io", limit=1)[0].key == "a"


def test_nested_and_list_fields(make_store: StoreFactory) -> None:
    store = make_store(index=fake_index(fields=["facts[*].text"]))
    store.put(("d",), "a", {"facts": [{"text": "ramen noodles"}, {"text": "deploy on fly io"}]})
    store.put(("d",), "b", {"facts": [{"text": "bananas"}]})
    hits = store.search(("d",), query="deploy fly io", limit=2)
    assert hits[0].key == "a"
    assert len({h.key for h in hits}) == 2  # an item with two vectors appears once


def test_custom_embed_function_works_like_langgraph(make_store: StoreFactory) -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, float("ramen" in t), 0.0] for t in texts]

    store = make_store(index={"embed": embed, "dims": 3, "fields": ["text"]})
    store.put(("d",), "a", {"text": "ramen"})
    store.put(("d",), "b", {"text": "other"})
    assert store.search(("d",), query="ramen please", limit=1)[0].key == "a"


OPAQUE_DIMS = 1024


def _opaque_embed(texts: list[str]) -> list[list[float]]:
    """Near-orthogonal vectors with no meaning at all: only keyword search can find anything."""
    out = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        out.append(np.random.default_rng(seed).standard_normal(OPAQUE_DIMS).tolist())
    return out


def test_keyword_search_finds_the_word(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(
        index={"embed": _opaque_embed, "dims": OPAQUE_DIMS, "fields": ["text"]}
    )
    for i in range(30):
        store.put(("m", "u"), f"n{i}", {"text": f"unrelated note number {i}"})
    store.put(("m", "u"), "fly", {"text": "Sukhveer deploys on Fly.io"})
    hits = store.search(("m", "u"), query="Fly.io", limit=3)
    assert hits[0].key == "fly"
    assert hits[0].score is not None and hits[0].score > hits[1].score  # type: ignore[operator]


def test_keyword_search_is_namespace_scoped(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(
        index={"embed": _opaque_embed, "dims": OPAQUE_DIMS, "fields": ["text"]}
    )
    store.put(("m", "bob"), "fly", {"text": "bob deploys on Fly.io"})
    store.put(("m", "alice"), "x", {"text": "alice likes tea"})
    hits = store.search(("m", "alice"), query="Fly.io", limit=5)
    assert [h.namespace for h in hits] == [("m", "alice")]


def test_keyword_only_store_without_embedder(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=None)
    store.put(("k",), "a", {"text": "deploys on Fly.io"})
    store.put(("k",), "b", {"text": "likes tea"})
    hits = store.search(("k",), query="fly", limit=2)
    assert hits[0].key == "a" and hits[0].score is not None
    assert hits[1].key == "b" and hits[1].score is None


def test_pure_dense_scores_match_langgraph(make_memshelf_store: StoreFactory) -> None:
    from langgraph.store.memory import InMemoryStore

    ours = make_memshelf_store(index=fake_index(), keyword_weight=0.0)
    ref = InMemoryStore(index=fake_index())
    for s in (ours, ref):
        _seed(s)
    a = [(h.key, round(h.score or 0, 5)) for h in ours.search(("m", "u"), query="deploy code")]
    b = [(h.key, round(h.score or 0, 5)) for h in ref.search(("m", "u"), query="deploy code")]
    assert a == b


def test_search_with_filter_and_query(store: BaseStore) -> None:
    store.put(("f",), "a", {"text": "deploy on fly io", "kind": "fact"})
    store.put(("f",), "b", {"text": "deploy on fly io today", "kind": "note"})
    hits = store.search(("f",), query="deploy fly", filter={"kind": "note"})
    assert [h.key for h in hits] == ["b"]


@pytest.mark.parametrize("query", ["", "   "])
def test_blank_query_lists(store: BaseStore, query: str) -> None:
    _seed(store)
    assert len(store.search(("m", "u"), query=query or None, limit=10)) == 3
