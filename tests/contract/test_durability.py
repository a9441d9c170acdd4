"""A real file: restarts, other processes, embedder bookkeeping and errors that lose nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from langgraph.store.base import PutOp

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import (
    EmbedderMismatchError,
    EmbeddingDimensionError,
    EmbeddingError,
    StoreError,
    ValueTooLargeError,
)
from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import DIMS, Probe, StoreFactory, fake_index


def test_survives_reopen(make_memshelf_store: StoreFactory, tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    first = make_memshelf_store(index=fake_index(), path=path)
    first.put(("m", "u"), "a", {"text": "I deploy on fly io"})
    first.close()
    second = make_memshelf_store(index=fake_index(), path=path)
    assert second.get(("m", "u"), "a") is not None
    assert second.search(("m", "u"), query="deploy fly", limit=1)[0].key == "a"


def test_another_process_sees_every_commit(
    make_memshelf_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "shared.db"
    store = make_memshelf_store(index=fake_index(), path=path)
    store.put(("m", "u"), "old", {"text": "tea"})
    assert store.search(("m", "u"), query="fly io deploy", limit=5)  # vectors now cached
    opener = make_memshelf_store.opener(path)  # type: ignore[attr-defined]
    script = textwrap.dedent(
        f"""
        from memshelf.embeddings import FakeEmbedder
        from memshelf.stores.redis import RedisStore
        from memshelf.stores.sqlite import SqliteStore
        s = {opener}, index={{"embed": FakeEmbedder({DIMS}), "dims": {DIMS},
                              "fields": ["text"]}})
        assert s.get(("m", "u"), "old") is not None
        s.put(("m", "u"), "new", {{"text": "I deploy on fly io"}})
        s.close()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    hits = store.search(("m", "u"), query="fly io deploy", limit=5)
    assert hits[0].key == "new"


def test_embedder_mismatch_is_refused_and_reembed_fixes_it(
    make_memshelf_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "e.db"
    store = make_memshelf_store(index=fake_index(), path=path)
    for i in range(5):
        store.put(("m", "u"), f"k{i}", {"text": f"fact number {i} about fly io"})
    store.put(("m", "u"), "plain", {"text": "not indexed"}, index=False)
    store.close()
    other = {"embed": FakeEmbedder(DIMS, seed=7), "dims": DIMS, "fields": ["text"]}
    with pytest.raises(EmbedderMismatchError) as err:
        make_memshelf_store(index=other, path=path)
    message = str(err.value)
    assert "fake:hashed-words:64:0" in message and "fake:hashed-words:64:7" in message
    assert "memshelf reembed" in message
    store = make_memshelf_store(index=other, path=path, verify_embedder=False)
    assert store.reembed(batch_size=2) == 5  # type: ignore[attr-defined]
    store.close()
    store = make_memshelf_store(index=other, path=path)
    assert store.stats()["items"] == 6  # type: ignore[attr-defined]
    assert store.stats()["vectors"] == 5  # type: ignore[attr-defined]
    assert store.search(("m", "u"), query="fact number 3", limit=1)[0].key == "k3"


def test_reopening_with_new_dimensions_needs_reembed(
    make_memshelf_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "dims.db"
    store = make_memshelf_store(index=fake_index(), path=path)
    store.put(("m",), "k", {"text": "deploy on fly io"})
    store.close()
    wider = {"embed": FakeEmbedder(DIMS * 2), "dims": DIMS * 2, "fields": ["text"]}
    with pytest.raises(EmbedderMismatchError):
        make_memshelf_store(index=wider, path=path)
    store = make_memshelf_store(index=wider, path=path, verify_embedder=False)
    assert store.reembed() == 1  # type: ignore[attr-defined]
    assert store.search(("m",), query="fly io deploy", limit=1)[0].score is not None


def test_setup_is_idempotent(make_memshelf_store: StoreFactory, tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    first = make_memshelf_store(index=fake_index(), path=path)
    first.put(("m",), "k", {"text": "tea"})
    second = make_memshelf_store(index=fake_index(), path=path)  # set up again, same data
    assert second.get(("m",), "k") is not None
    assert second.stats()["embedder"] == "fake:hashed-words:64:0/64"  # type: ignore[attr-defined]


def test_wrong_dimensions_fail_clearly_and_write_nothing(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(dims=DIMS + 1))
    with pytest.raises(EmbeddingDimensionError, match=r"length 64.*dims=65"):
        store.put(("m",), "k", {"text": "hello"})
    assert store.get(("m",), "k") is None


def test_oversized_value_fails_and_keeps_the_old_one(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(), max_value_bytes=1000)
    store.put(("m",), "k", {"text": "small"})
    with pytest.raises(ValueTooLargeError, match="limit is 1,000"):
        store.put(("m",), "k", {"text": "x" * 2000})
    item = store.get(("m",), "k")
    assert item is not None and item.value == {"text": "small"}


def test_non_json_values_and_non_dicts_are_refused(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store()
    with pytest.raises(StoreError, match="JSON"):
        store.put(("m",), "k", {"when": object()})
    with pytest.raises(StoreError, match="dicts"):
        store.batch([PutOp(("m",), "k", [1])])  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="ttl must be"):
        store.put(("m",), "k", {"v": 1}, ttl=-1)
    assert store.get(("m",), "k") is None


def test_a_failing_embedder_writes_nothing(make_memshelf_store: StoreFactory) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("provider down")

    store = make_memshelf_store(index={"embed": broken, "dims": 3})
    with pytest.raises(EmbeddingError, match="provider down"):
        store.put(("m",), "k", {"text": "hello"})
    assert store.stats()["items"] == 0  # type: ignore[attr-defined]


def test_closed_store_says_so(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(("m",), "k")


def test_deletes_and_overwrites_leave_nothing_behind(make_memshelf_store: StoreFactory) -> None:
    store = make_memshelf_store(index=fake_index(fields=["facts[*]"]))
    store.put(("m", "u"), "a", {"facts": ["deploys on fly io", "likes ramen", "uses vim"]})
    store.put(("m", "u"), "b", {"facts": ["drinks tea"]})
    assert Probe.held(store) == {"items": 2, "vectors": 4, "keywords": 2}
    store.put(("m", "u"), "a", {"facts": ["moved to render"]})  # three vectors become one
    assert Probe.held(store) == {"items": 2, "vectors": 2, "keywords": 2}
    assert store.search(("m", "u"), query="likes ramen", limit=1)[0].key in {"a", "b"}
    store.delete(("m", "u"), "a")
    store.delete(("m", "u"), "b")
    assert Probe.held(store) == {"items": 0, "vectors": 0, "keywords": 0}
    assert store.search(("m", "u"), query="fly io") == []
    assert store.list_namespaces() == []


def test_wal_mode_on_file(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "w.db") as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_searches_from_many_threads(make_memshelf_store: StoreFactory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = make_memshelf_store(index=fake_index())
    for i in range(50):
        store.put(("m", "u"), f"k{i}", {"text": f"fact {i} about topic {i % 7}"})

    def work(i: int) -> str:
        store.put(("m", "u"), f"w{i}", {"text": f"written by worker {i}"})
        return store.search(("m", "u"), query=f"topic {i % 7} query {i}", limit=3)[0].key

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(work, range(800)))  # > the 512-entry query cache: evictions race
    assert len(keys) == 800 and all(keys)
    assert len(store.search(("m", "u"), limit=2000)) == 850
