"""Regression tests for the SQLite store's review findings (issue 12), each on a real file.

(a) the TTL maintenance thread waiting for another process's write lock stalls no
read; (b) a catch-up with another writer that fails part-way is retried, not
lost; (c) filters for ±inf match what InMemoryStore matches; (d) a filter with a
thousand keys, and text holding a lone surrogate, get answers or a clear error,
never SQLite's or Python's raw one; (e) cached vectors of emptied namespaces are
dropped and the cache is bounded by bytes; (f) refreshes queued before a write
that rolls back are written later all the same.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from memshelf.config import Settings
from memshelf.errors import ConfigurationError, InvalidInputError, MemshelfError, StoreError
from memshelf.stores import _query as q
from memshelf.stores import _sqlite_ttl, open_store
from memshelf.stores._sqlite_schema import ITEM_MASK
from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import fake_index

NS = ("m", "u")
TTL = {"default_ttl": 60.0, "refresh_on_read": True}
INF = math.inf


def _expires(path: Path, key: str) -> float:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT expires_at FROM items WHERE key = ?", (key,)).fetchone()
    return float(row[0])


def _age(path: Path, key: str, seconds: float) -> None:
    """Pretend the item was last read ``seconds`` ago."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE items SET expires_at = expires_at - ? WHERE key = ?", (seconds, key))


def _wait_until(done: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ----------------------------------------------------------------- (a) maintenance vs readers
@pytest.mark.parametrize("work", ["refresh", "sweep"])
def test_maintenance_waiting_for_another_writer_stalls_no_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: str
) -> None:
    """The maintenance thread retries every 50 ms while another connection holds the
    write lock for the whole read loop; reads must go on meanwhile (before the fix the
    thread held the store's lock through SQLite's 10 s busy wait)."""
    monkeypatch.setattr(_sqlite_ttl, "REFRESH_FLUSH_S", 0.05)
    path = tmp_path / "stall.db"
    ttl = {**TTL, "sweep_interval_minutes": 0.001} if work == "sweep" else TTL
    store = SqliteStore(path, index=fake_index(), ttl=ttl)  # type: ignore[arg-type]
    store.put(NS, "k", {"text": "tea"})
    _age(path, "k", 600)
    aged = _expires(path, "k")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process is inside a long write
    reads: list[object] = []
    done = threading.Event()

    def read_for_a_while() -> None:
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            reads.append(store.get(NS, "k"))
            reads.append(store.search(NS, query="tea"))
        done.set()

    reader = threading.Thread(target=read_for_a_while, daemon=True)
    reader.start()
    finished = done.wait(timeout=6.0)  # a read stuck behind the maintenance waits ~10 s
    blocker.execute("ROLLBACK")
    blocker.close()
    reader.join()
    assert finished, f"reads stalled while the maintenance thread waited ({work})"
    assert reads and all(reads)
    if work == "refresh":  # and the refresh, put back after its failed tries, lands
        assert _wait_until(lambda: _expires(path, "k") > aged)
    store.close()


# ----------------------------------------------------------------- (b) catching up
def test_a_catch_up_that_fails_part_way_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sync.db"
    mine, theirs = SqliteStore(path, index=fake_index()), SqliteStore(path, index=fake_index())
    mine.put(NS, "old", {"text": "green tea in the morning"})
    assert [h.key for h in mine.search(NS, query="green tea")] == ["old"]  # cached
    theirs.put(NS, "new", {"text": "deploys to fly io on fridays"})
    calls = {"n": 0}
    real = mine._add_rows

    def fail_once(block: Any, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("disk I/O error (injected)")
        real(block, rows)

    monkeypatch.setattr(mine, "_add_rows", fail_once)
    with pytest.raises((sqlite3.Error, MemshelfError)):
        mine.search(NS, query="deploys to fly io on fridays")
    hits = mine.search(NS, query="deploys to fly io on fridays")
    assert [h.key for h in hits][:1] == ["new"], "the other writer's item was lost to search"
    assert mine.get(NS, "new") is not None
    mine.close()
    theirs.close()


# ----------------------------------------------------------------- (c) ±inf filters
# Values InMemoryStore can compare by $gt/$lt (it raises for None, lists and dicts) ...
INF_NUMBERS: list[dict[str, Any]] = [
    {"x": INF},
    {"x": -INF},
    {"x": 1.0},
    {"x": -1.0},
    {"x": 1e308},
    {"x": "inf"},
    {"x": math.nan},
    {"x": True},
]
# ... and the rest, for equality.
INF_VALUES: list[dict[str, Any]] = [*INF_NUMBERS, {"x": None}, {"y": 1}]
INF_NESTED: list[dict[str, Any]] = [
    {"x": [INF]},
    {"x": [-INF, 1]},
    {"x": {"y": INF}},
    {"x": {"y": 1.0}},
]
SCALAR_FILTERS: list[dict[str, Any]] = [
    {"x": INF},
    {"x": -INF},
    {"x": {"$eq": INF}},
    {"x": {"$eq": -INF}},
    {"x": {"$ne": INF}},
    {"x": {"$ne": -INF}},
]
RANGE_FILTERS: list[dict[str, Any]] = [
    {"x": {"$gt": 0}},
    {"x": {"$lt": 0}},
    {"x": {"$gte": INF}},
    {"x": {"$gt": INF}},
    {"x": {"$lte": -INF}},
    {"x": {"$lt": -INF}},
    {"x": {"$gt": -INF}},
    {"x": {"$lt": INF}},
    {"x": {"$gte": 1e308}},
    {"x": {"$gt": "-inf", "$lt": "inf"}},
]
NESTED_FILTERS: list[dict[str, Any]] = [
    {"x": [INF]},
    {"x": [-INF, 1]},
    {"x": {"y": INF}},
    {"x": {"$eq": [INF]}},
    {"x": {"$eq": {"y": INF}}},
    {"x": {"$ne": [INF]}},
    {"x": {"$ne": {"y": INF}}},
]


@pytest.fixture
def inf_stores(tmp_path: Path) -> Iterator[tuple[BaseStore, BaseStore]]:
    sqlite = SqliteStore(tmp_path / "inf.db")
    memory = InMemoryStore()
    for store in (sqlite, memory):
        for i, value in enumerate(INF_VALUES):
            store.put(("scalar",), f"s{i}", value)
        for i, value in enumerate(INF_NUMBERS):
            store.put(("range",), f"r{i}", value)
        for i, value in enumerate(INF_NESTED):
            store.put(("nested",), f"n{i}", value)
    yield sqlite, memory
    sqlite.close()


def _found(store: BaseStore, ns: tuple[str, ...], filter_: dict[str, Any]) -> list[str]:
    return sorted(h.key for h in store.search(ns, filter=filter_, limit=100))


@pytest.mark.parametrize(
    ("ns", "filter_"),
    [(("scalar",), f) for f in SCALAR_FILTERS]
    + [(("range",), f) for f in RANGE_FILTERS]
    + [(("nested",), f) for f in NESTED_FILTERS],
    ids=repr,
)
def test_inf_filters_match_what_inmemorystore_matches(
    inf_stores: tuple[BaseStore, BaseStore], ns: tuple[str, ...], filter_: dict[str, Any]
) -> None:
    sqlite, memory = inf_stores
    assert _found(sqlite, ns, filter_) == _found(memory, ns, filter_)


def test_inf_equality_finds_the_item(inf_stores: tuple[BaseStore, BaseStore]) -> None:
    """The reported case, spelled out: an item holding inf is found by a filter for inf."""
    sqlite, _ = inf_stores
    assert _found(sqlite, ("scalar",), {"x": INF}) == ["s0"]
    assert _found(sqlite, ("scalar",), {"x": {"$eq": -INF}}) == ["s1"]
    assert _found(sqlite, ("nested",), {"x": {"y": INF}}) == ["n2"]


# ----------------------------------------------------------------- (d) big and odd filters
def test_a_thousand_key_filter_gets_an_answer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "wide.db")
    whole = {f"k{i}": f"v{i}" for i in range(1000)}
    store.put(NS, "all", whole)
    store.put(NS, "most", {**whole, "k999": "other"})
    for size in (999, 1000, 1500):
        filter_ = {f"k{i}": f"v{i}" for i in range(size)}
        got = sorted(h.key for h in store.search(NS, filter=filter_))
        expected = sorted(
            key
            for key, value in (("all", whole), ("most", {**whole, "k999": "other"}))
            if q.matches_filter(value, filter_)
        )
        assert got == expected, size
    assert [h.key for h in store.search(NS, filter=whole)] == ["all"]
    store.close()


SURROGATE_FILTERS: list[dict[str, Any]] = [
    {"\ud800": None},
    {"\ud800": 1},
    {"\ud800": {"$ne": 1}},
    {"a": {"\ud800": 1}},
    {"a": {"$eq": {"\ud800": 1}}},
    {"a": {"$ne": {"\ud800": 1}}},
    {"a": "\ud800"},
    {"a": {"$ne": "\ud800"}},
]


@pytest.mark.parametrize("filter_", SURROGATE_FILTERS, ids=ascii)
def test_a_lone_surrogate_in_a_filter_matches_like_inmemorystore(
    tmp_path: Path, filter_: dict[str, Any]
) -> None:
    sqlite, memory = SqliteStore(tmp_path / "s.db"), InMemoryStore()
    for store in (sqlite, memory):
        store.put(NS, "one", {"a": {"b": 1}})
        store.put(NS, "two", {"a": "x", "b": 2})
    assert _found(sqlite, NS, filter_) == _found(memory, NS, filter_)
    sqlite.close()


def test_text_with_a_lone_surrogate_is_refused_or_not_found(tmp_path: Path) -> None:
    """No put stores it (a clear error naming it); reads naming it find nothing."""
    store = SqliteStore(tmp_path / "s.db", index=fake_index())
    store.put(NS, "k", {"text": "tea"})
    refused: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
        (NS, "k\ud800", {"text": "tea"}),
        (("m", "u\ud800"), "k", {"text": "tea"}),
        (NS, "k2", {"text": "tea \ud800"}),
        (NS, "k2", {"\ud800": 1}),
    ]
    for namespace, key, value in refused:
        with pytest.raises(InvalidInputError, match="lone surrogate"):
            store.put(namespace, key, value)
    assert store.get(NS, "k\ud800") is None
    assert store.get(("m", "u\ud800"), "k") is None
    assert store.search(("m", "u\ud800"), query="tea") == []
    assert store.list_namespaces(prefix=("m", "u\ud800")) == []
    assert [h.key for h in store.search(NS, query="tea \ud800")] == ["k"]
    assert store.get(NS, "k") is not None  # nothing was written by the refused puts
    store.close()


# ----------------------------------------------------------------- (e) the vector cache
def _fill(store: SqliteStore, namespaces: int, per: int = 2) -> None:
    for n in range(namespaces):
        for i in range(per):
            store.put(("team", f"t{n}"), f"k{i}", {"text": f"fact {i} of team {n} about tea"})


def _cached(store: SqliteStore) -> set[str]:
    return set(store._blocks)


def test_emptied_namespaces_leave_the_vector_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    mine = SqliteStore(path, index=fake_index())
    theirs = SqliteStore(path, index=fake_index())
    _fill(mine, 30)
    for n in range(30):
        mine.search(("team", f"t{n}"), query="tea")
    assert len(_cached(mine)) == 30
    for n in range(10):  # emptied by this store
        for i in range(2):
            mine.delete(("team", f"t{n}"), f"k{i}")
    assert not {f"team.t{n}" for n in range(10)} & _cached(mine)
    for n in range(10, 20):  # emptied by another process: seen through the change log
        for i in range(2):
            theirs.delete(("team", f"t{n}"), f"k{i}")
    mine.search(("team", "t25"), query="tea")
    assert not {f"team.t{n}" for n in range(20)} & _cached(mine)
    for n in range(20, 30):  # emptied by a TTL sweep
        for i in range(2):
            mine.put(("team", f"t{n}"), f"k{i}", {"text": "brief"}, ttl=0.0001)
    mine.search(("team", "t25"), query="tea")
    time.sleep(0.05)
    assert mine.sweep_ttl() == 20
    assert _cached(mine) == set()
    assert mine.search(("team", "t5"), query="tea") == []
    mine.close()
    theirs.close()


def test_a_tiny_cache_bound_changes_no_result(tmp_path: Path) -> None:
    roomy = SqliteStore(tmp_path / "roomy.db", index=fake_index())
    tiny = SqliteStore(tmp_path / "tiny.db", index=fake_index(), vector_cache_bytes=1)
    for store in (roomy, tiny):
        _fill(store, 12, per=3)

    def answers(store: SqliteStore) -> list[list[tuple[str, str, float | None]]]:
        out = []
        for query in ("fact 1 of team 3", "tea", "team 11"):
            for prefix in [("team",), *(("team", f"t{n}") for n in range(12))]:
                hits = store.search(prefix, query=query, limit=5)
                out.append([(".".join(h.namespace), h.key, h.score) for h in hits])
        return out

    assert answers(tiny) == answers(roomy)
    tiny.put(("team", "t3"), "k9", {"text": "a new fact about coffee"})
    roomy.put(("team", "t3"), "k9", {"text": "a new fact about coffee"})
    assert answers(tiny) == answers(roomy)
    assert len(tiny._blocks) == 1  # only the block read last stays
    assert len(roomy._blocks) == 12
    roomy.close()
    tiny.close()


def test_the_cache_bound_is_a_setting(tmp_path: Path) -> None:
    settings = Settings(vector_cache_mb=3)
    store = open_store(f"sqlite:///{tmp_path / 'set.db'}", settings=settings, index=None)
    assert isinstance(store, SqliteStore)
    assert store._blocks.max_bytes == 3 * 2**20
    store.close()
    with pytest.raises(ConfigurationError, match="vector_cache_bytes"):
        SqliteStore(tmp_path / "bad.db", vector_cache_bytes=-1)


# ----------------------------------------------------------------- (f) refreshes and rollbacks
def test_refreshes_queued_before_a_rolled_back_write_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_ttl, "REFRESH_FLUSH_S", 3600.0)  # only this test flushes
    path = tmp_path / "rollback.db"
    store = SqliteStore(path, index=fake_index(), ttl=TTL)  # type: ignore[arg-type]
    store.put(NS, "k", {"text": "tea"})
    _age(path, "k", 600)
    aged = _expires(path, "k")
    read_at = time.time()
    assert store.get(NS, "k") is not None  # queues a refresh
    with sqlite3.connect(path) as conn:  # the next put needs an id past the last one
        conn.execute(
            "INSERT INTO items(id, ns, key, value, created_at, updated_at) "
            "VALUES (?, 'x', 'last', ?, 0, 0)",
            (ITEM_MASK, json.dumps({})),
        )
    with pytest.raises(StoreError, match="used up its item ids"):
        store.put(NS, "new", {"text": "coffee"})  # its transaction rolls back
    assert _expires(path, "k") == aged
    store.flush_refreshes()
    assert abs(_expires(path, "k") - (read_at + 3600.0)) < 5.0, "the queued refresh was lost"
    store.close()


def test_the_cache_drops_the_least_recently_searched_first() -> None:
    from memshelf.stores._sqlite_blocks import BlockCache  # (new: imported here, so the
    from memshelf.stores.vectors import VectorBlock  # rest of this file runs on old code)

    def block(rows: int) -> VectorBlock:
        b = VectorBlock(4, capacity=rows)
        b.add(np.arange(rows, dtype=np.int64), np.ones((rows, 4), dtype=np.float32))
        return b

    one = block(10).nbytes + 1024
    cache = BlockCache(max_bytes=3 * one)
    for ns in "abc":
        cache.add(ns, block(10))
    assert cache.use("a") is not None  # a is now the most recent: b goes first
    cache.add("d", block(10))
    assert list(cache) == ["c", "a", "d"]
    assert cache.nbytes <= cache.max_bytes
    cache.add("e", block(100))  # alone over the bound: kept, every other block goes
    assert list(cache) == ["e"]
    emptied = cache["e"]
    for item in range(100):
        emptied.remove(item)
    cache.changed("e")
    assert list(cache) == [] and cache.nbytes == 0


# (g) a read's urgent refresh meets another process's write lock: the read answers,
# the refresh is queued and written once the lock is free.
def test_an_urgent_refresh_blocked_by_another_writer_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with SqliteStore(path, ttl=TTL) as store:
        store.put(NS, "k", {"text": "prefers green tea"})
        with sqlite3.connect(path) as conn:  # 20 s left: the read must refresh it itself
            conn.execute("UPDATE items SET expires_at = ? WHERE key = 'k'", (time.time() + 20,))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process inside a long write
        try:
            item = store.get(NS, "k")
            queued = bool(store._ttl.pending)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert item is not None and item.value == {"text": "prefers green tea"}
        assert queued
        assert _wait_until(lambda: _expires(path, "k") > time.time() + 3000)


# (h) an empty path is SQLite's private temporary database, as ":memory:" is.
def test_an_empty_path_opens_a_private_store() -> None:
    with SqliteStore("") as store:
        store.put(NS, "k", {"text": "tea"})
        item = store.get(NS, "k")
        assert item is not None and item.value == {"text": "tea"}


# (i) which words keyword search uses is decided within the search's own namespaces:
# another owner's many items holding a word must not turn it off for everyone.
@pytest.mark.parametrize("ranges", [8, 0], ids=["by-rowid-range", "by-tag"])
def test_another_owners_items_leave_keyword_search_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ranges: int
) -> None:
    from memshelf.stores import _sqlite_keyword as keyword

    monkeypatch.setattr(keyword, "KEYWORD_MAX_DOCS", 3)
    monkeypatch.setattr(keyword, "KEYWORD_RANGES", ranges)
    with SqliteStore(tmp_path / "kw.db") as store:  # keyword-only: no embedder
        store.put(("memories", "alice"), "tea", {"text": "prefers green tea"})
        store.put(("memories", "alice"), "other", {"text": "walks the dog"})
        for i in range(5):  # more than KEYWORD_MAX_DOCS items of bob's hold "tea"
            store.put(("memories", "bob"), f"b{i}", {"text": f"tea note {i}"})
        hits = store.search(("memories", "alice"), query="tea", limit=2)
        assert hits[0].key == "tea" and hits[0].score is not None and hits[0].score > 0
        assert hits[1].score is None  # the other item is listed after, unscored
        bob = store.search(("memories", "bob"), query="tea", limit=2)
        assert all(h.score is None for h in bob)  # in bob's 5 items "tea" says little
