"""Filters and namespace listings on the Redis server, never a scan of every item.

Filters become ``fv`` TAG terms (``_redis_filter.py``), a superset that Python
re-checks: the property test below proves the superset over drawn values and
filters, the contract suite proves equal answers end to end. Namespaces come
from a registry kept in the write's own transaction (``_redis_names.py``); a
store written by schema 1 is upgraded in place when opened.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memshelf.embeddings import FakeEmbedder
from memshelf.stores import _query as q
from memshelf.stores._redis_filter import ALL, MAX_LEAVES, filter_clause, value_tokens
from memshelf.stores.redis import RedisStore, connect, drop_prefix, item_id

DIMS = 64
Opener = Callable[..., RedisStore]

# ----------------------------------------------------------------- the clause, in Python
KEYS = ["a", "b", "n", "a.b", 'q"k', "é", "", "$x", "0"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 0.0, -0.0, 1.0, 0.5, 2**53, 2**53 + 1, 1e20, 10**20]),
    st.sampled_from(["x", "X", "1", "", "é", "true", "a\0b"]),
)
values = st.recursive(
    st.one_of(scalars, st.sampled_from([math.nan, math.inf, -math.inf])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner),
    max_leaves=8,
)
items = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
structured = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)
    ),
    max_leaves=4,
)
operators = st.dictionaries(
    st.sampled_from(q.FILTER_OPERATORS),
    st.one_of(structured, st.sampled_from([math.nan, math.inf, "abc"])),
    min_size=1,
)
conditions = st.recursive(
    st.one_of(scalars, operators),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)
    ),
    max_leaves=5,
)
filters = st.dictionaries(st.sampled_from(KEYS), conditions, min_size=1, max_size=3)
_MUST = re.compile(r"(?<!-)@fv:\{(\w+) \| " + ALL + r"\}")
_MUST_NOT = re.compile(r"-@fv:\{(\w+)\}")


def _server_keeps(clause: str | None, tags: set[str]) -> bool:
    """What the query engine answers for an item holding ``tags``."""
    if clause is None:
        return False
    must, must_not = set(_MUST.findall(clause)), set(_MUST_NOT.findall(clause))
    assert len(must) + len(must_not) == clause.count("@fv:"), clause
    return (ALL in tags or must <= tags) and not must_not & tags


def _python(value: dict[str, Any], filter_: dict[str, Any]) -> bool | None:
    """Python's answer for ``value`` as the store holds it: JSON, so no NaN is itself."""
    try:
        return q.matches_filter(json.loads(json.dumps(value)), filter_)
    except (TypeError, ValueError, OverflowError):
        return None  # Python raises: no claim to check


@settings(max_examples=300, deadline=None)
@given(value=items, filter_=filters)
def test_the_server_keeps_every_item_python_accepts(
    value: dict[str, Any], filter_: dict[str, Any]
) -> None:
    try:
        q.check_filter(filter_)
    except ValueError:
        return
    if _python(value, filter_):
        assert _server_keeps(filter_clause(filter_), set(value_tokens(value)))


def _twin(value: Any) -> Any:
    """A value Python finds equal (``1``, ``1.0``, ``True``), or the value itself."""
    if isinstance(value, bool | int | float) and not isinstance(value, bool) and value == 1:
        return True
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return float(value)
    return value


def _condition_for(value: Any, data: st.DataObject) -> Any:
    """A condition drawn from ``value`` itself: mostly one it passes, sometimes not."""
    kinds = ["same", "twin", "twin", "$eq", "$ne", "$ne other"]
    kind = data.draw(st.sampled_from([*kinds, "walk", "walk"]))
    if kind == "walk" and isinstance(value, dict) and value:
        return _walk(value, data)
    if kind == "walk" and isinstance(value, list):
        return [_condition_for(v, data) for v in value]
    if kind == "$eq":
        return {"$eq": value}
    if kind == "$ne":
        return {"$ne": _twin(value)}
    if kind == "$ne other":
        return {"$ne": data.draw(scalars)}
    return _twin(value) if kind == "twin" else value


def _walk(value: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    keys = data.draw(st.lists(st.sampled_from(sorted(value)), min_size=1, unique=True))
    return {k: _condition_for(value[k], data) for k in keys}


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=4), data=st.data())
def test_the_server_keeps_every_item_passing_a_filter_drawn_from_it(
    value: dict[str, Any], data: st.DataObject
) -> None:
    filter_ = _walk(value, data)
    if _python(value, filter_):
        assert _server_keeps(filter_clause(filter_), set(value_tokens(value)))


def test_the_clause_narrows_the_common_filters() -> None:
    assert filter_clause(None) == filter_clause({}) == ""
    assert len(_MUST.findall(filter_clause({"kind": "fact"}) or "")) == 1
    assert len(_MUST.findall(filter_clause({"meta": {"src": "web"}, "n": 3}) or "")) == 2
    assert len(_MUST_NOT.findall(filter_clause({"status": {"$ne": "superseded"}}) or "")) == 1
    assert filter_clause({"n": {"$gte": 3}}) == ""  # ranges are Python's
    assert filter_clause({"k": None}) == ""  # a missing key reads as None
    for never in ({"n": math.nan}, {"n": {"$gt": "abc"}}, {"a": {"$eq": (1,)}}):
        assert filter_clause(never) is None, never
    # Equal in Python, so one tag; "1" is not 1.
    assert value_tokens({"n": True}) == value_tokens({"n": 1}) == value_tokens({"n": 1.0})
    assert value_tokens({"n": "1"}) != value_tokens({"n": 1})
    assert value_tokens({"x": list(range(MAX_LEAVES + 1))}) == [ALL]


# ----------------------------------------------------------------- on a real Redis
@pytest.fixture
def shelf(redis_url: str) -> Iterator[Opener]:
    """Opens stores (clients) on one fresh prefix of the session's real Redis."""
    prefix = "filters-" + uuid.uuid4().hex[:10]
    opened: list[RedisStore] = []

    def open_(**options: Any) -> RedisStore:
        index = {"embed": FakeEmbedder(DIMS), "dims": DIMS, "fields": ["text"]}
        store = RedisStore(redis_url, index=index, prefix=prefix, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    client = connect(redis_url)
    drop_prefix(client, prefix)
    client.close()


def _count_server_rows(store: RedisStore) -> list[int]:
    """Rows each FT.SEARCH of ``store`` returns, recorded as it runs."""
    rows: list[int] = []
    search = store._ft_search

    def counted(index: str, query: str, *args: Any) -> list[dict[bytes, Any]]:
        found = search(index, query, *args)
        rows.append(len(found))
        return found

    store._ft_search = counted  # type: ignore[method-assign]
    return rows


def test_a_selective_filter_reads_only_matching_items_from_the_server(shelf: Opener) -> None:
    store = shelf()
    ns = ("memories", "sukhveer")
    for i in range(300):
        status = "active" if i % 100 == 7 else "superseded"
        store.put(ns, f"k{i}", {"text": f"tea note {i}", "status": status, "n": i})
    rows = _count_server_rows(store)
    current = {"status": {"$ne": "superseded"}}
    assert {h.key for h in store.search(ns, filter=current, limit=10)} == {"k7", "k107", "k207"}
    assert {h.key for h in store.search(ns, filter={"status": "active"})} == {"k7", "k107", "k207"}
    assert store.search(ns, filter={"status": "gone"}) == []
    assert sum(rows) == 6  # before: pages of 64 over all 300 items, per search
    rows.clear()
    hits = store.search(ns, query="tea note", filter=current, limit=2)
    assert {h.key for h in hits} <= {"k7", "k107", "k207"} and len(hits) == 2
    assert max(rows) <= 3  # the KNN and keyword queries only see current items
    rows.clear()
    assert [h.key for h in store.search(ns, filter={"n": {"$gte": 297}})] == [
        "k299",
        "k298",
        "k297",
    ]


def test_an_item_with_too_many_leaves_is_left_to_python(shelf: Opener) -> None:
    store = shelf()
    ns = ("memories", "big")
    store.put(ns, "big", {"kind": "rare", "ids": list(range(MAX_LEAVES + 10))})
    store.put(ns, "small", {"kind": "common"})
    assert [h.key for h in store.search(ns, filter={"kind": "rare"})] == ["big"]
    assert [h.key for h in store.search(ns, filter={"kind": {"$ne": "rare"}})] == ["small"]
    assert [h.key for h in store.search(ns, filter={"ids": {"3": 3}})] == []


def _score(store: RedisStore, namespace: tuple[str, ...]) -> float | None:
    return store._r.zscore(store._names.deadlines, q.order_key(namespace))


def _expires_ms(store: RedisStore, namespace: tuple[str, ...], key: str) -> int:
    return int(store._r.pexpiretime(store._item_key(item_id(namespace, key))))


def _registry_keys(store: RedisStore) -> set[bytes]:
    found = set(store._r.scan_iter(match=f"{store.prefix}:n:*", count=1000))
    return found | {k for k in (store._names.names, store._names.deadlines) if store._r.exists(k)}


def test_the_registry_follows_puts_deletes_refreshes_and_expiry(shelf: Opener) -> None:
    store = shelf(ttl={"default_ttl": 60.0, "refresh_on_read": True})
    ns = ("u", "mixed")
    store.put(ns, "ttl", {"v": 1}, ttl=1.0)
    first = _expires_ms(store, ns, "ttl")
    assert _score(store, ns) == first
    store.put(ns, "forever", {"v": 2}, ttl=None)
    assert _score(store, ns) == math.inf
    store.delete(ns, "forever")  # the latest expiry is recomputed, not kept
    assert _score(store, ns) == first
    time.sleep(0.02)
    assert store.get(ns, "ttl") is not None  # refresh on read moves the namespace too
    assert _score(store, ns) == _expires_ms(store, ns, "ttl") > first
    store.put(("u", "gone"), "k", {}, ttl=0.001)
    store.put(("u", "deep", "er"), "k", {})
    time.sleep(0.2)
    assert store.list_namespaces(prefix=("u",)) == [("u", "deep", "er"), ("u", "mixed")]
    assert _score(store, ("u", "gone")) is None  # collected, its item set too
    assert store._r.exists(store._names.ns_key(("u", "gone"))) == 0
    assert store.stats()["namespaces"] == 2
    store.delete(ns, "ttl")
    store.delete(("u", "deep", "er"), "k")
    assert store.list_namespaces() == []
    assert _registry_keys(store) == set()  # a forget leaves no namespace name behind


def _downgrade_to_schema_1(store: RedisStore) -> None:
    """Leave exactly what memshelf's schema 1 wrote: no fv tags, no registry."""
    r, p = store._r, store.prefix
    for index in (store._items_index, store._vectors_index):
        r.execute_command("FT.DROPINDEX", index)
    store._create_index(
        store._items_index, f"{p}:i:",
        "nsp TAG text TEXT NOSTEM updated NUMERIC SORTABLE nvec NUMERIC".split(),
    )  # fmt: skip
    params = ["TYPE", "FLOAT32", "DIM", DIMS, "DISTANCE_METRIC", "COSINE"]
    store._create_index(
        store._vectors_index, f"{p}:v:", ["nsp", "TAG", "vec", "VECTOR", "FLAT", 6, *params]
    )
    for key in [*r.scan_iter(match=f"{p}:i:*"), *r.scan_iter(match=f"{p}:v:*")]:
        r.hdel(key, "fv")
    for key in _registry_keys(store):
        r.delete(key)
    r.hset(store._meta_key, "schema", "1")


def test_a_schema_1_store_is_upgraded_when_opened(shelf: Opener) -> None:
    old = shelf()
    for u in range(3):
        for i in range(20):
            kind = "rare" if i == 5 else "common"
            ttl = 5.0 if i % 2 else None
            old.put(("memories", f"user{u}"), f"k{i}", {"text": f"tea {i}", "kind": kind}, ttl=ttl)
    old.put(("team", "t1", "findings"), "f", {"claim": "x"})
    _downgrade_to_schema_1(old)
    old.close()
    store = shelf()
    assert store.meta("schema") == "2"
    for index in (store._items_index, store._vectors_index):
        attributes = store._cmd("FT.INFO", index)[b"attributes"]
        assert any(a[b"identifier"] == b"fv" for a in attributes), index
    assert store.list_namespaces(max_depth=2) == [
        ("memories", "user0"), ("memories", "user1"), ("memories", "user2"), ("team", "t1"),
    ]  # fmt: skip
    assert _score(store, ("memories", "user1")) == math.inf
    rows = _count_server_rows(store)
    rare = store.search(("memories",), filter={"kind": "rare"})
    assert sorted(h.namespace[1] for h in rare) == ["user0", "user1", "user2"]
    assert sum(rows) == 3  # found through the tags the upgrade wrote
    hits = store.search(("memories", "user2"), query="tea 5", filter={"kind": "rare"})
    assert [h.key for h in hits] == ["k5"] and hits[0].score is not None
    store.delete(("memories", "user2"), "k5")
    assert shelf().meta("schema") == "2"  # opening again changes nothing
    assert len(store.search(("memories", "user2"), limit=100)) == 19


def test_a_write_between_the_watch_and_the_exec_is_retried_not_overwritten(
    shelf: Opener,
) -> None:
    """A put reads the old vector count after WATCHing the item: another client's write
    in between fails the EXEC, and the retry deletes that client's vectors too."""
    store, other = shelf(), shelf()
    ns, key = ("memories", "race"), "k"
    store.put(ns, key, {"a": "one"}, index=["a"])
    pipeline, raced = store._r.pipeline, []

    def racing_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute
        if kwargs.get("transaction") is False and not raced:

            def execute_then_race() -> Any:
                found = execute()
                raced.append(True)
                other.put(ns, key, {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}, index=["*"])
                return found

            pipe.execute = execute_then_race
        return pipe

    store._r.pipeline = racing_pipeline  # type: ignore[method-assign]
    store.put(ns, key, {"a": "x", "b": "y"}, index=["a", "b"])
    assert raced
    vectors = sorted(store._r.scan_iter(match=f"{store.prefix}:v:*"))
    assert len(vectors) == 2 and store.get(ns, key).value == {"a": "x", "b": "y"}  # type: ignore[union-attr]
    assert [h.key for h in store.search(ns, filter={"b": "y"})] == [key]
