"""The contract suite runs every test over each store that has the feature.

``store`` covers langgraph's InMemoryStore (the reference semantics),
memshelf's SQLite store on a real file and memshelf's Redis store on a real
Redis 8 with the query engine (started once per session from PyPI parts);
``memshelf_store`` covers only memshelf's backends, for features InMemoryStore
does not have (TTL, keyword search, durability). ``Probe`` reads what a
backend really holds (expiry deadlines, leftover rows or keys), so the same
test checks both.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from memshelf.embeddings import FakeEmbedder
from memshelf.stores.redis import RedisStore, connect, drop_prefix, item_id
from memshelf.stores.sqlite import SqliteStore

DIMS = 64
StoreFactory = Callable[..., BaseStore]


def fake_index(**extra: Any) -> dict[str, Any]:
    return {"embed": FakeEmbedder(DIMS), "dims": DIMS, "fields": ["text"], **extra}


def _inmemory(tmp_path: Path) -> StoreFactory:
    def make(index: Any = None, **_: Any) -> BaseStore:
        return InMemoryStore(index=index)

    return make


def _sqlite(tmp_path: Path) -> StoreFactory:
    opened: list[SqliteStore] = []

    def make(index: Any = None, path: Path | None = None, **options: Any) -> BaseStore:
        store = SqliteStore(path or tmp_path / f"store{len(opened)}.db", index=index, **options)
        opened.append(store)
        return store

    make.opened = opened  # type: ignore[attr-defined]
    make.opener = lambda path: f"SqliteStore({str(path)!r}"  # type: ignore[attr-defined]
    return make


def _redis(tmp_path: Path, url: str) -> StoreFactory:
    """A fresh key prefix per test; ``path`` names a prefix, so reopening finds the data."""
    opened: list[RedisStore] = []
    run = hashlib.blake2b(str(tmp_path).encode(), digest_size=6).hexdigest()

    def make(index: Any = None, path: Path | None = None, **options: Any) -> BaseStore:
        name = path.stem if path is not None else f"store{len(opened)}"
        store = RedisStore(url, index=index, prefix=f"t{run}-{name}", **options)
        opened.append(store)
        return store

    make.opened = opened  # type: ignore[attr-defined]
    make.opener = lambda path: f"RedisStore({url!r}, prefix={f't{run}-{path.stem}'!r}"  # type: ignore[attr-defined]
    return make


ALL_BACKENDS = ("inmemory", "redis", "sqlite")
MEMSHELF_BACKENDS = ("redis", "sqlite")


def _factory(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if name == "redis":
        return _redis(tmp_path, request.getfixturevalue("redis_url"))
    return {"inmemory": _inmemory, "sqlite": _sqlite}[name](tmp_path)


def _close_all(factory: StoreFactory) -> None:
    prefixes = {}
    for store in getattr(factory, "opened", []):
        if isinstance(store, RedisStore):
            prefixes[store.prefix] = store.url
        store.close()
    for prefix, url in prefixes.items():
        client = connect(url)
        drop_prefix(client, prefix)
        client.close()


def _sqlite_column(
    store: BaseStore, column: str, namespace: tuple[str, ...], key: str
) -> float | None:
    assert isinstance(store, SqliteStore)
    row = store._conn.execute(
        f"SELECT {column} FROM items WHERE ns = ? AND key = ?", (".".join(namespace), key)
    ).fetchone()
    assert row is not None, "the item is gone"
    return None if row[0] is None else float(row[0])


class Probe:
    """What a memshelf store really holds, read past its public API."""

    @staticmethod
    def expires_at(store: BaseStore, namespace: tuple[str, ...], key: str) -> float | None:
        if isinstance(store, RedisStore):
            ms = store._r.pttl(store._item_key(item_id(namespace, key)))
            assert ms != -2, "the item is gone"
            return None if ms == -1 else time.time() + ms / 1000.0
        assert isinstance(store, SqliteStore)
        store.flush_refreshes()  # queued refresh-on-read writes land within a second anyway
        return _sqlite_column(store, "expires_at", namespace, key)

    @staticmethod
    def ttl_minutes(store: BaseStore, namespace: tuple[str, ...], key: str) -> float | None:
        if isinstance(store, RedisStore):
            raw = store._r.hget(store._item_key(item_id(namespace, key)), "ttl")
            return float(raw) if raw else None
        return _sqlite_column(store, "ttl_minutes", namespace, key)

    @staticmethod
    def held(store: BaseStore) -> dict[str, int]:
        """Stored items, vectors and keyword-index entries, expired or not."""
        if isinstance(store, RedisStore):

            def count(pattern: str) -> int:
                return sum(1 for _ in store._r.scan_iter(match=pattern, count=1000))

            info = store._cmd("FT.INFO", store._items_index)
            return {
                "items": count(f"{store.prefix}:i:*"),
                "vectors": count(f"{store.prefix}:v:*"),
                "keywords": int(info[b"num_docs"]),
            }
        assert isinstance(store, SqliteStore)
        sql = store._conn.execute
        return {
            "items": sql("SELECT count(*) FROM items").fetchone()[0],
            "vectors": sql("SELECT count(*) FROM vectors").fetchone()[0],
            "keywords": sql("SELECT count(*) FROM items_fts").fetchone()[0],
        }


@pytest.fixture(params=ALL_BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = _factory(request.param, request, tmp_path)
    yield factory
    _close_all(factory)


@pytest.fixture(params=MEMSHELF_BACKENDS)
def make_memshelf_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = _factory(request.param, request, tmp_path)
    yield factory
    _close_all(factory)


@pytest.fixture
def store(make_store: StoreFactory) -> BaseStore:
    return make_store(index=fake_index())


@pytest.fixture
def mstore(make_memshelf_store: StoreFactory) -> BaseStore:
    return make_memshelf_store(index=fake_index())
