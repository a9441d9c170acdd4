"""reembed embeds outside the lock: writes that land meanwhile must survive the swap."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import EmbedderMismatchError
from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import DIMS, fake_index


class _MeddlingEmbedder(FakeEmbedder):
    """The new embedder; the first time reembed calls it, another writer acts."""

    def __init__(self, meddle: Callable[[], None]) -> None:
        super().__init__(DIMS, seed=7)
        self.meddle: Callable[[], None] | None = meddle

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.meddle is not None and len(texts) > 1:  # reembed's batch, not a put
            meddle, self.meddle = self.meddle, None
            meddle()
        return super().embed_documents(texts)


def _vectors_of(store: SqliteStore, key: str) -> int:
    row = store._conn.execute(
        "SELECT count(*) FROM vectors JOIN items ON items.id = vectors.item_id WHERE items.key = ?",
        (key,),
    ).fetchone()
    return int(row[0])


def test_writes_during_reembed_keep_their_vectors(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    old = SqliteStore(path, index=fake_index())
    for i in range(4):
        old.put(("m", "u"), f"k{i}", {"text": f"fact number {i} about tea"})
    old.put(("m", "u"), "doomed", {"text": "a fact that gets deleted"})
    old.close()

    def meddle() -> None:
        other.put(("m", "u"), "new", {"text": "I deploy on fly io"})
        other.put(("m", "u"), "k1", {"text": "rewritten: sailing on the lake"})
        other.delete(("m", "u"), "doomed")

    embedder = _MeddlingEmbedder(meddle)
    index = {"embed": embedder, "dims": DIMS, "fields": ["text"]}
    store = SqliteStore(path, index=index, verify_embedder=False)
    other = SqliteStore(path, index=index, verify_embedder=False)
    try:
        assert store.reembed(batch_size=64) == 3  # k0, k2, k3: the untouched ones
        assert _vectors_of(store, "new") == 1
        assert _vectors_of(store, "k1") == 1
        assert _vectors_of(store, "doomed") == 0
        assert store.stats()["vectors"] == 5
        assert store.search(("m", "u"), query="deploy fly io", limit=1)[0].key == "new"
        assert store.search(("m", "u"), query="sailing lake", limit=1)[0].key == "k1"
        assert store.search(("m", "u"), query="fact number 2 tea", limit=1)[0].key == "k2"
    finally:
        store.close()
        other.close()


def test_a_refused_file_leaves_no_connection_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "refused.db"
    SqliteStore(path, index=fake_index()).put(("m",), "k", {"text": "tea"})
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    other = {"embed": FakeEmbedder(DIMS, seed=7), "dims": DIMS, "fields": ["text"]}
    with pytest.raises(EmbedderMismatchError):
        SqliteStore(path, index=other)
    assert len(opened) == 1
    with pytest.raises(sqlite3.ProgrammingError):
        opened[0].execute("SELECT 1")
