"""TTL: expiry hides items before any sweep; sweeps delete everything; refresh keeps own TTL."""

from __future__ import annotations

import time

from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import StoreFactory, fake_index

SHORT = 0.002  # minutes = 120 ms
DEFAULT_TTL = {"default_ttl": 60.0, "refresh_on_read": True}


def _raw(store: SqliteStore, sql: str) -> list[tuple[object, ...]]:
    return store._conn.execute(sql).fetchall()


def test_expired_item_is_never_returned_before_a_sweep(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "gone", {"text": "deploy on fly io"}, ttl=SHORT)
    store.put(("t",), "kept", {"text": "deploy on fly io too"})
    time.sleep(0.25)
    assert store.get(("t",), "gone") is None
    assert [h.key for h in store.search(("t",), query="deploy fly io")] == ["kept"]
    assert [h.key for h in store.search(("t",))] == ["kept"]
    store.put(("t2",), "gone", {"text": "x"}, ttl=SHORT)
    time.sleep(0.25)
    assert ("t2",) not in store.list_namespaces()


def test_sweep_deletes_rows_vectors_and_keywords(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "gone", {"text": "deploy on fly io"}, ttl=SHORT)
    store.put(("t",), "kept", {"text": "tea"})
    time.sleep(0.25)
    assert store.sweep_ttl() == 1
    assert _raw(store, "SELECT key FROM items") == [("kept",)]
    assert len(_raw(store, "SELECT * FROM vectors")) == 1
    assert len(_raw(store, "SELECT rowid FROM items_fts")) == 1
    assert store.sweep_ttl() == 0


def test_refresh_on_read_keeps_the_items_own_ttl(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "own", {"text": "fly"}, ttl=1.0)
    store.put(("t",), "default", {"text": "fly"})
    before = dict(_raw(store, "SELECT key, expires_at FROM items"))
    time.sleep(0.05)
    store.get(("t",), "own")
    store.search(("t",), query="fly")
    after = dict(_raw(store, "SELECT key, expires_at FROM items"))
    now = time.time()
    assert after["own"] > before["own"]  # refreshed...
    assert abs(after["own"] - (now + 60.0)) < 5.0  # ...by its own 1 minute, not the default hour
    assert abs(after["default"] - (now + 3600.0)) < 5.0


def test_refresh_can_be_turned_off_per_read(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "k", {"text": "fly"}, ttl=1.0)
    before = _raw(store, "SELECT expires_at FROM items")
    time.sleep(0.05)
    store.get(("t",), "k", refresh_ttl=False)
    assert _raw(store, "SELECT expires_at FROM items") == before


def test_refreshed_item_outlives_its_original_deadline(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "k", {"text": "fly"}, ttl=0.005)  # 300 ms
    for _ in range(4):
        time.sleep(0.15)
        assert store.get(("t",), "k") is not None  # each read pushes the deadline out
    time.sleep(0.45)
    assert store.get(("t",), "k") is None


def test_default_ttl_applies_and_none_means_forever(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "default", {"v": 1})
    store.put(("t",), "forever", {"v": 1}, ttl=None)
    rows = dict(_raw(store, "SELECT key, ttl_minutes FROM items"))
    assert rows == {"default": 60.0, "forever": None}


def test_periodic_sweep_runs_inside_batches(make_memshelf_store: StoreFactory) -> None:
    ttl = {**DEFAULT_TTL, "sweep_interval_minutes": 0.001}
    store = make_memshelf_store(index=fake_index(), ttl=ttl)
    store.put(("t",), "gone", {"text": "x"}, ttl=SHORT)
    time.sleep(0.25)
    store.get(("t",), "other")
    assert _raw(store, "SELECT key FROM items") == []
