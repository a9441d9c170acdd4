"""Key-value semantics every store shares: get/put/delete, prefixes, filters, paging, listing."""

from __future__ import annotations

import pytest
from langgraph.store.base import BaseStore, GetOp, PutOp, SearchOp

from tests.contract.conftest import StoreFactory


def test_put_get_roundtrip_and_missing(store: BaseStore) -> None:
    store.put(("users", "a"), "prefs", {"theme": "dark", "n": [1, 2, {"x": None}]})
    item = store.get(("users", "a"), "prefs")
    assert item is not None
    assert item.value == {"theme": "dark", "n": [1, 2, {"x": None}]}
    assert item.namespace == ("users", "a")
    assert item.key == "prefs"
    assert store.get(("users", "a"), "nope") is None
    assert store.get(("users", "b"), "prefs") is None


def test_overwrite_replaces_value(store: BaseStore) -> None:
    store.put(("ns",), "k", {"v": 1})
    first = store.get(("ns",), "k")
    store.put(("ns",), "k", {"v": 2})
    second = store.get(("ns",), "k")
    assert first is not None and second is not None
    assert second.value == {"v": 2}
    assert second.updated_at >= first.updated_at
    assert len(store.search(("ns",))) == 1


def test_delete_removes_item_everywhere(store: BaseStore) -> None:
    store.put(("docs",), "a", {"text": "deploy on fly io"})
    store.put(("docs",), "b", {"text": "bananas are yellow"})
    store.delete(("docs",), "a")
    assert store.get(("docs",), "a") is None
    keys = {r.key for r in store.search(("docs",), query="deploy on fly io")}
    assert keys == {"b"}
    store.delete(("docs",), "missing")  # deleting nothing is fine


def test_search_is_prefix_scoped_and_exact_per_label(store: BaseStore) -> None:
    store.put(("memories", "alice"), "1", {"text": "alice fact"})
    store.put(("memories", "al"), "1", {"text": "al fact"})
    store.put(("memories", "alice", "work"), "1", {"text": "alice work fact"})
    store.put(("memoriesx", "al"), "1", {"text": "other root"})
    got = {(r.namespace, r.key) for r in store.search(("memories", "al"))}
    assert got == {(("memories", "al"), "1")}
    got = {r.namespace for r in store.search(("memories", "alice"), limit=10)}
    assert got == {("memories", "alice"), ("memories", "alice", "work")}
    assert len(store.search(("memories",), limit=10)) == 3
    assert len(store.search((), limit=10)) == 4


def test_filters(store: BaseStore) -> None:
    store.put(("f",), "a", {"kind": "fact", "n": 1, "meta": {"src": "chat"}})
    store.put(("f",), "b", {"kind": "fact", "n": 5, "meta": {"src": "web"}})
    store.put(("f",), "c", {"kind": "note", "n": 9})
    keys = lambda **kw: {r.key for r in store.search(("f",), **kw)}  # noqa: E731
    assert keys(filter={"kind": "fact"}) == {"a", "b"}
    assert keys(filter={"meta": {"src": "web"}}) == {"b"}
    assert keys(filter={"n": {"$gt": 1}}) == {"b", "c"}
    assert keys(filter={"n": {"$gte": 1, "$lt": 9}}) == {"a", "b"}
    assert keys(filter={"kind": {"$ne": "fact"}}) == {"c"}
    assert keys(filter={"kind": "fact", "n": {"$lte": 1}}) == {"a"}
    assert keys(filter={"kind": "missing"}) == set()


def test_limit_offset_pages_cover_everything_once(store: BaseStore) -> None:
    for i in range(25):
        store.put(("p",), f"k{i:02d}", {"text": f"item {i}", "i": i})
    pages = [store.search(("p",), limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    keys = [r.key for page in pages for r in page]
    assert sorted(keys) == [f"k{i:02d}" for i in range(25)]
    assert store.search(("p",), limit=10, offset=30) == []


def test_semantic_pages_cover_everything_once(store: BaseStore) -> None:
    for i in range(12):
        store.put(("p",), f"k{i}", {"text": f"deploy app number {i}"})
    pages = [store.search(("p",), query="deploy app", limit=5, offset=o) for o in (0, 5, 10)]
    keys = [r.key for page in pages for r in page]
    assert sorted(keys) == sorted(f"k{i}" for i in range(12))
    scores = [r.score for page in pages for r in page]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


def test_list_namespaces(store: BaseStore) -> None:
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x", "b", "c")]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "e"),
        ("x", "b", "c"),
    ]
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "e")]
    assert store.list_namespaces(prefix=("a", "b", "c", "d")) == []
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("*", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("x", "b", "c"),
    ]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "e"), ("x", "b")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "e")]


def test_batch_results_follow_op_order(store: BaseStore) -> None:
    store.put(("b",), "x", {"text": "x"})
    results = store.batch(
        [
            GetOp(("b",), "x"),
            PutOp(("b",), "y", {"text": "y"}),
            SearchOp(("b",), limit=5),
            GetOp(("b",), "missing"),
        ]
    )
    assert results[0] is not None and results[0].key == "x"
    assert results[1] is None
    assert isinstance(results[2], list)
    assert results[3] is None
    assert store.get(("b",), "y") is not None


@pytest.mark.parametrize("bad", [("a.b",), ("",), ()])
def test_invalid_namespaces_are_refused(store: BaseStore, bad: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        store.put(bad, "k", {"v": 1})


async def test_async_api(make_store: StoreFactory) -> None:
    from tests.contract.conftest import fake_index

    store = make_store(index=fake_index())
    await store.aput(("as",), "a", {"text": "I deploy on fly io"})
    await store.aput(("as",), "b", {"text": "I like bananas"})
    item = await store.aget(("as",), "a")
    assert item is not None and item.value["text"] == "I deploy on fly io"
    hits = await store.asearch(("as",), query="deploy fly", limit=1)
    assert [h.key for h in hits] == ["a"]
    assert await store.alist_namespaces() == [("as",)]
    await store.adelete(("as",), "a")
    assert await store.aget(("as",), "a") is None
