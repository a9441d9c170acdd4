"""A search embeds its query while the store runs its keyword search (issue 12).

The recall node's latency was embedding + keyword search + dense search; a
read-only batch now embeds its new queries on a pool thread and the backend
asks for the vector only after its keyword search (``base.QueryVectors``). The
embedder below waits for the keyword search to start before it answers: in
sequence it would wait in vain, overlapped it is released at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import PutOp, SearchOp

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import EmbeddingError, StoreError
from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import DIMS, StoreFactory

NS = ("memories", "overlap")


class GatedEmbedder(FakeEmbedder):
    """Answers a query only once keyword search has begun (or after 10 s in vain)."""

    def __init__(self) -> None:
        super().__init__(DIMS)
        self.keyword_started = threading.Event()
        self.overlapped: list[bool] = []
        self.fail = False

    def embed_query(self, text: str) -> list[float]:
        self.overlapped.append(self.keyword_started.wait(timeout=10))
        if self.fail:
            return [0.0] * (DIMS - 1)  # a wrong length: the store must refuse it
        return super().embed_query(text)


@pytest.fixture
def gated(
    make_memshelf_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, GatedEmbedder]:
    embedder = GatedEmbedder()
    store = make_memshelf_store(index={"embed": embedder, "dims": DIMS, "fields": ["text"]})
    module = __import__(type(store).__module__, fromlist=["keyword_hits"])
    original = module.keyword_hits

    def keyword_hits(*args: Any, **kwargs: Any) -> Any:
        embedder.keyword_started.set()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "keyword_hits", keyword_hits)
    store.batch(
        [
            PutOp(NS, "z", {"text": "a zebra crossed the road"}),
            PutOp(NS, "c", {"text": "the cat sat on the mat"}),
        ]
    )
    return store, embedder


def test_query_is_embedded_while_keyword_search_runs(gated: tuple[Any, GatedEmbedder]) -> None:
    store, embedder = gated
    hits = store.search(NS, query="zebra", limit=2)
    assert embedder.overlapped == [True]
    assert hits[0].key == "z"
    assert hits[0].score is not None and hits[0].score > 0
    store.search(NS, query="zebra", limit=2)  # the cached vector: no second embedding
    assert embedder.overlapped == [True]


def test_an_embedder_error_in_a_read_still_raises(gated: tuple[Any, GatedEmbedder]) -> None:
    store, embedder = gated
    embedder.fail = True
    with pytest.raises(EmbeddingError):
        store.search(NS, query="cat", limit=2)
    with pytest.raises(EmbeddingError):  # also when no search of the batch got that far
        store.batch([SearchOp(NS, query="mat", limit=0)])


def test_a_batch_that_writes_embeds_its_queries_first(gated: tuple[Any, GatedEmbedder]) -> None:
    """A failing embedder must write nothing, so a batch with puts does not overlap."""
    store, embedder = gated
    embedder.fail = True
    embedder.keyword_started.set()
    with pytest.raises(EmbeddingError):
        store.batch([PutOp(NS, "n", {"text": "new"}), SearchOp(NS, query="new", limit=1)])
    assert store.get(NS, "n") is None


def _search_in_child(path: str, out: Any) -> None:
    with SqliteStore(path, index={"embed": FakeEmbedder(DIMS), "dims": DIMS}) as store:
        out.put([h.key for h in store.search(NS, query="zebra crossing", limit=1)])


def test_a_forked_child_embeds_on_threads_of_its_own(tmp_path: Path) -> None:
    """The parent's pool threads do not exist in a forked child: the child must not
    queue its query's embedding behind them (it would wait forever)."""
    path = str(tmp_path / "fork.db")
    with SqliteStore(path, index={"embed": FakeEmbedder(DIMS), "dims": DIMS}) as store:
        store.put(NS, "z", {"text": "a zebra crossed the road"})
        assert [h.key for h in store.search(NS, query="zebra", limit=1)] == ["z"]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_search_in_child, args=(path, out))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert out.get(timeout=5) == ["z"]


class OfflineEmbedder(FakeEmbedder):
    """An embedding service that cannot be reached (a network error is an OSError)."""

    def __init__(self) -> None:
        super().__init__(DIMS)
        self.offline = False

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.offline:
            raise ConnectionError("connection refused")
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if self.offline:
            raise ConnectionError("connection refused")
        return super().embed_query(text)


def test_an_unreachable_embedder_is_an_embedding_error(make_memshelf_store: StoreFactory) -> None:
    """Not the store file's error ("Cannot open … (permissions?)"): the embedder's, named."""
    embedder = OfflineEmbedder()
    store = make_memshelf_store(index={"embed": embedder, "dims": DIMS, "fields": ["text"]})
    store.put(NS, "z", {"text": "a zebra crossed the road"})
    embedder.offline = True
    for attempt in (
        lambda: store.search(NS, query="zebra", limit=1),
        lambda: store.put(NS, "n", {"text": "new"}),
        lambda: asyncio.run(store.asearch(NS, query="mat", limit=1)),
        lambda: asyncio.run(store.aput(NS, "n", {"text": "new"})),
    ):
        with pytest.raises(EmbeddingError) as caught:
            attempt()
        assert not isinstance(caught.value, StoreError)
        assert "ConnectionError" in str(caught.value) and "MEMSHELF_EMBEDDINGS" in str(caught.value)
    assert store.get(NS, "n") is None
    embedder.offline = False
    assert [h.key for h in store.search(NS, query="zebra", limit=1)] == ["z"]


class SlowEmbedder(FakeEmbedder):
    """Holds every query until released (or 10 s), and tells who is waiting."""

    def __init__(self) -> None:
        super().__init__(DIMS)
        self.release = threading.Event()
        self.finished = threading.Event()  # some query's wait has ended
        self.waiting = 0
        self.changed = threading.Condition()

    def embed_query(self, text: str) -> list[float]:
        with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        self.release.wait(timeout=10)
        self.finished.set()
        return super().embed_query(text)

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.waiting >= count, timeout=10)


def _searching(store: Any, queries: list[str]) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=store.search, args=(NS,), kwargs={"query": q, "limit": 1})
        for q in queries
    ]
    for thread in threads:
        thread.start()
    return threads


def test_a_search_waiting_for_its_embedder_stalls_no_other_call(
    make_memshelf_store: StoreFactory,
) -> None:
    """The store's lock is let go while a query embeds: another thread's get answers."""
    embedder = SlowEmbedder()
    store = make_memshelf_store(index={"embed": embedder, "dims": DIMS, "fields": ["text"]})
    store.put(NS, "z", {"text": "a zebra crossed the road"})
    (search,) = _searching(store, ["zebra"])
    try:
        assert embedder.wait_for(1)
        item = store.get(NS, "z")
        answered_while_embedding = not embedder.finished.is_set()
    finally:
        embedder.release.set()
        search.join(timeout=30)
    assert item is not None and item.value["text"] == "a zebra crossed the road"
    assert answered_while_embedding


def test_many_searches_embed_at_once(make_memshelf_store: StoreFactory) -> None:
    """Concurrent searches are not queued behind a small pool (it was cpus + 4 threads)."""
    embedder = SlowEmbedder()
    store = make_memshelf_store(index={"embed": embedder, "dims": DIMS, "fields": ["text"]})
    store.put(NS, "z", {"text": "a zebra crossed the road"})
    searches = _searching(store, [f"query {i}" for i in range(12)])
    try:
        all_embedding = embedder.wait_for(12)
    finally:
        embedder.release.set()
        for search in searches:
            search.join(timeout=30)
    assert all_embedding
