"""TTL: expiry hides items before any sweep; sweeps delete everything; refresh keeps own TTL."""

from __future__ import annotations

import time

from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import Probe, StoreFactory, fake_index

SHORT = 0.002  # minutes = 120 ms
DEFAULT_TTL = {"default_ttl": 60.0, "refresh_on_read": True}


def _eventually_held(store: object, want: dict[str, int], within: float = 3.0) -> None:
    """Expired data leaves storage: at once on a sweep, within Redis's expiry cycle otherwise."""
    deadline = time.monotonic() + within
    while Probe.held(store) != want and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(0.05)
    assert Probe.held(store) == want  # type: ignore[arg-type]


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


def test_expired_items_leave_nothing_behind(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "gone", {"text": "deploy on fly io"}, ttl=SHORT)
    store.put(("t",), "kept", {"text": "tea"})
    time.sleep(0.25)
    swept = store.sweep_ttl()  # type: ignore[attr-defined]
    assert swept == (1 if isinstance(store, SqliteStore) else 0)  # Redis expires keys itself
    _eventually_held(store, {"items": 1, "vectors": 1, "keywords": 1})
    assert store.sweep_ttl() == 0  # type: ignore[attr-defined]


def test_refresh_on_read_keeps_the_items_own_ttl(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "own", {"text": "fly"}, ttl=1.0)
    store.put(("t",), "default", {"text": "fly"})
    before = Probe.expires_at(store, ("t",), "own")
    time.sleep(1.0)  # a move of under 1% of the TTL is not worth a write
    store.get(("t",), "own")
    store.search(("t",), query="fly")
    after = Probe.expires_at(store, ("t",), "own")
    now = time.time()
    assert before is not None and after is not None and after > before  # refreshed...
    assert abs(after - (now + 60.0)) < 5.0  # ...by its own 1 minute, not the default hour
    default = Probe.expires_at(store, ("t",), "default")
    assert default is not None and abs(default - (now + 3600.0)) < 5.0


def test_refresh_can_be_turned_off_per_read(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), ttl=DEFAULT_TTL)
    store.put(("t",), "k", {"text": "fly"}, ttl=1.0)
    before = Probe.expires_at(store, ("t",), "k")
    time.sleep(0.2)
    store.get(("t",), "k", refresh_ttl=False)
    store.search(("t",), query="fly", refresh_ttl=False)
    after = Probe.expires_at(store, ("t",), "k")
    assert before is not None and after is not None and abs(after - before) < 0.1


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
    assert Probe.ttl_minutes(store, ("t",), "default") == 60.0
    assert Probe.ttl_minutes(store, ("t",), "forever") is None
    assert Probe.expires_at(store, ("t",), "forever") is None


def test_expired_items_go_without_an_explicit_sweep(make_memshelf_store: StoreFactory) -> None:
    ttl = {**DEFAULT_TTL, "sweep_interval_minutes": 0.001}
    store = make_memshelf_store(index=fake_index(), ttl=ttl)
    store.put(("t",), "gone", {"text": "x"}, ttl=SHORT)
    time.sleep(0.25)
    # SQLite sweeps in its maintenance thread, Redis on its own; no request is needed.
    _eventually_held(store, {"items": 0, "vectors": 0, "keywords": 0})
