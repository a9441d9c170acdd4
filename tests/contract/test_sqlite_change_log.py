"""Another process's writes reach cached vectors item by item, not by dropping the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from memshelf.stores import sqlite as sqlite_store
from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import fake_index

A, B = ("m", "a"), ("m", "b")


def _pair(tmp_path: Path) -> tuple[SqliteStore, SqliteStore]:
    path = tmp_path / "log.db"
    return SqliteStore(path, index=fake_index()), SqliteStore(path, index=fake_index())


def _keys(store: SqliteStore, ns: tuple[str, ...], query: str) -> list[str]:
    return [h.key for h in store.search(ns, query=query, limit=20)]


def test_foreign_writes_update_only_the_items_they_touched(tmp_path: Path) -> None:
    mine, theirs = _pair(tmp_path)
    for i in range(5):
        mine.put(A, f"a{i}", {"text": f"tea number {i}"})
        mine.put(B, f"b{i}", {"text": f"coffee number {i}"})
    _keys(mine, A, "tea")
    _keys(mine, B, "coffee")
    cached = dict(mine._blocks)
    theirs.put(A, "new", {"text": "I deploy on fly io"})
    theirs.put(A, "a1", {"text": "sailing on the lake"})
    theirs.delete(A, "a2")
    assert _keys(mine, A, "deploy fly io")[0] == "new"
    assert _keys(mine, A, "sailing lake")[0] == "a1"
    assert "a2" not in _keys(mine, A, "tea number 2")
    assert mine._blocks[A_ns()] is cached[A_ns()]  # caught up in place
    assert mine._blocks[B_ns()] is cached[B_ns()]  # untouched namespace kept as is
    fresh = SqliteStore(tmp_path / "log.db", index=fake_index())
    for query in ("deploy fly io", "sailing lake", "tea number 2", "tea number 4"):
        assert _keys(mine, A, query) == _keys(fresh, A, query)
    for s in (mine, theirs, fresh):
        s.close()


def test_a_cache_further_behind_than_the_log_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CHANGES_KEPT", 3)
    mine, theirs = _pair(tmp_path)
    mine.put(A, "old", {"text": "tea"})
    _keys(mine, A, "tea")
    for i in range(10):  # the log keeps 3 entries: mine falls behind it
        theirs.put(A, f"n{i}", {"text": f"fly io deploy {i}"})
    assert sorted(_keys(mine, A, "fly io deploy")) == sorted(["old"] + [f"n{i}" for i in range(10)])
    for s in (mine, theirs):
        s.close()


def test_the_change_log_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "CHANGES_KEPT", 50)
    store = SqliteStore(tmp_path / "bounded.db", index=fake_index())
    for i in range(200):
        store.put(A, f"k{i % 7}", {"text": f"note {i}"})
    count = store._conn.execute("SELECT count(*) FROM vector_changes").fetchone()[0]
    assert 0 < count <= 51
    store.close()


def A_ns() -> str:  # the encoded form of A
    return sqlite_store.q.encode_ns(A)


def B_ns() -> str:
    return sqlite_store.q.encode_ns(B)
