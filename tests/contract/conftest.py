"""The contract suite runs every test over each store that has the feature.

``store`` covers langgraph's InMemoryStore (the reference semantics) and
memshelf's SQLite store on a real file; ``memshelf_store`` covers only
memshelf's backends, for features InMemoryStore does not have (TTL, keyword
search, durability). A later Redis backend joins both lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from memshelf.embeddings import FakeEmbedder
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
    return make


ALL_BACKENDS = {"inmemory": _inmemory, "sqlite": _sqlite}
MEMSHELF_BACKENDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(ALL_BACKENDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = ALL_BACKENDS[request.param](tmp_path)
    yield factory
    for store in getattr(factory, "opened", []):
        store.close()


@pytest.fixture(params=sorted(MEMSHELF_BACKENDS))
def make_memshelf_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = MEMSHELF_BACKENDS[request.param](tmp_path)
    yield factory
    for store in getattr(factory, "opened", []):
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> BaseStore:
    return make_store(index=fake_index())


@pytest.fixture
def mstore(make_memshelf_store: StoreFactory) -> BaseStore:
    return make_memshelf_store(index=fake_index())
