"""Redis reembed next to other clients: their writes, deletes and expiries win, TTLs carry over.

reembed embeds outside any transaction, so another client can put, delete or
outlive an item meanwhile. ``_DuringEmbedding`` is the new embedder with a
hook: the first time reembed calls it, another client acts, deterministically
inside that window.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import redis

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import EmbedderMismatchError
from memshelf.stores.redis import RedisStore, connect, drop_prefix, item_id

DIMS = 64
NS = ("memories", "sukhveer")
NEW_SEED = 7
Opener = Callable[..., RedisStore]


class _DuringEmbedding(FakeEmbedder):
    """The new embedder; its first embed call runs ``meanwhile`` (another client's move)."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        super().__init__(DIMS, seed=NEW_SEED)
        self.meanwhile: Callable[[], None] | None = meanwhile

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().embed_documents(texts)


@pytest.fixture
def shelf(redis_url: str) -> Iterator[Opener]:
    """Opens stores (clients) on one fresh prefix of the session's real Redis."""
    prefix = "reembed-" + uuid.uuid4().hex[:10]
    opened: list[RedisStore] = []

    def open_(embed: Any, verify: bool = True) -> RedisStore:
        index = {"embed": embed, "dims": DIMS, "fields": ["text"]}
        store = RedisStore(redis_url, index=index, prefix=prefix, verify_embedder=verify)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    client = connect(redis_url)
    drop_prefix(client, prefix)
    client.close()


def _keys(store: RedisStore, key: str) -> tuple[str, list[str]]:
    """The item's hash key and every vector hash key Redis holds for it."""
    id_ = item_id(NS, key)
    found = store._r.scan_iter(match=f"{store.prefix}:v:{id_}:*", count=1000)
    return store._item_key(id_), sorted(k.decode() for k in found)


def _assert_vectors_of(store: RedisStore, key: str, text: str) -> None:
    """The item holds exactly one vector: the new embedder's vector of ``text``."""
    item_key, vector_keys = _keys(store, key)
    assert store._r.hget(item_key, "nvec") == b"1"
    assert vector_keys == [store._vector_key(item_id(NS, key), 0)]
    stored = np.frombuffer(store._r.hget(vector_keys[0], "vec"), dtype=np.float32)
    expected = np.asarray(FakeEmbedder(DIMS, seed=NEW_SEED).embed_query(text), dtype=np.float32)
    assert np.allclose(stored, expected, atol=1e-6)


def _old_store(shelf: Opener, **items: str) -> RedisStore:
    old = shelf(FakeEmbedder(DIMS))
    for key, text in items.items():
        old.put(NS, key, {"text": text})
    return old


def test_a_put_during_embedding_keeps_the_vectors_its_put_wrote(shelf: Opener) -> None:
    _old_store(shelf, moved="I live in Lisbon", other="tea with milk")
    writer = shelf(FakeEmbedder(DIMS, seed=NEW_SEED), verify=False)  # another client

    def put_meanwhile() -> None:
        writer.put(NS, "moved", {"text": "tardigrades survive in space"})
        writer.put(NS, "fresh", {"text": "quokkas live on rottnest island"})

    store = shelf(_DuringEmbedding(put_meanwhile), verify=False)
    count = store.reembed()
    for key, text in [
        ("moved", "tardigrades survive in space"),
        ("fresh", "quokkas live on rottnest island"),
        ("other", "tea with milk"),
    ]:
        _assert_vectors_of(store, key, text)
        assert store.search(NS, query=text, limit=1)[0].key == key
    assert count == 1  # "other": the two puts wrote their own vectors
    assert store.meta("embedder") == f"fake:hashed-words:{DIMS}:{NEW_SEED}/{DIMS}"


def test_an_item_deleted_during_embedding_gets_no_vectors_back(shelf: Opener) -> None:
    _old_store(shelf, gone="I live in Lisbon", kept="tea with milk")
    writer = shelf(FakeEmbedder(DIMS, seed=NEW_SEED), verify=False)
    store = shelf(_DuringEmbedding(lambda: writer.delete(NS, "gone")), verify=False)
    store.reembed()
    item_key, vector_keys = _keys(store, "gone")
    assert vector_keys == []
    assert store._r.exists(item_key) == 0  # not even a stub hash holding nvec
    assert store.get(NS, "gone") is None
    _assert_vectors_of(store, "kept", "tea with milk")


def test_vectors_take_the_remaining_ttl_of_their_item(shelf: Opener) -> None:
    old = _old_store(shelf, forever="tea with milk")
    old.put(NS, "fading", {"text": "I live in Lisbon"}, ttl=60)
    item_key, vector_keys = _keys(old, "fading")
    for key in (item_key, *vector_keys):
        old._r.pexpire(key, 10 * 60_000)  # ten of its sixty minutes left
    store = shelf(FakeEmbedder(DIMS, seed=NEW_SEED), verify=False)
    store.reembed()
    _assert_vectors_of(store, "fading", "I live in Lisbon")
    item_deadline = store._r.pexpiretime(item_key)
    vector_deadline = store._r.pexpiretime(store._vector_key(item_id(NS, "fading"), 0))
    assert item_deadline > 0 and abs(vector_deadline - item_deadline) <= 10  # ms, not 50 min
    forever_key, forever_vectors = _keys(store, "forever")
    assert store._r.pttl(forever_key) == -1 and store._r.pttl(forever_vectors[0]) == -1


def test_an_item_that_expires_during_embedding_gets_no_vectors_back(shelf: Opener) -> None:
    old = _old_store(shelf, kept="tea with milk")
    old.put(NS, "fading", {"text": "I live in Lisbon"}, ttl=60)
    item_key, vector_keys = _keys(old, "fading")

    def expire_meanwhile() -> None:
        for key in (item_key, *vector_keys):
            old._r.pexpire(key, 1)
        for _ in range(1000):  # EXISTS on an expired key removes it
            if not old._r.exists(item_key, *vector_keys):
                return
            time.sleep(0.005)
        raise AssertionError("Redis did not expire the item")

    store = shelf(_DuringEmbedding(expire_meanwhile), verify=False)
    store.reembed()
    assert _keys(store, "fading") == (item_key, [])
    assert store._r.exists(item_key) == 0
    _assert_vectors_of(store, "kept", "tea with milk")


def test_a_reembed_stopped_part_way_is_refused_with_either_embedder_until_run_again(
    shelf: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops at the second batch: half the vectors are the new embedder's.
    Opening with either embedder must say so, and a second reembed finishes the switch."""
    _old_store(shelf, **{f"k{i}": f"note {i} about tea" for i in range(6)})
    store = shelf(FakeEmbedder(DIMS, seed=NEW_SEED), verify=False)
    register = store._r.register_script

    def flaky(source: str) -> Any:
        script, calls = register(source), [0]

        def run(**kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == 2:
                raise redis.ConnectionError("connection dropped (injected)")
            return script(**kwargs)

        return run

    monkeypatch.setattr(store._r, "register_script", flaky)
    with pytest.raises(redis.ConnectionError):
        store.reembed(batch_size=2)
    monkeypatch.undo()
    for embed in (FakeEmbedder(DIMS), FakeEmbedder(DIMS, seed=NEW_SEED)):
        with pytest.raises(EmbedderMismatchError, match=r"stopped part-way.*`memshelf reembed`"):
            shelf(embed)
    again = shelf(FakeEmbedder(DIMS, seed=NEW_SEED), verify=False)  # what `memshelf reembed` opens
    assert again.reembed() == 6
    reopened = shelf(FakeEmbedder(DIMS, seed=NEW_SEED))
    for i in range(6):
        _assert_vectors_of(reopened, f"k{i}", f"note {i} about tea")
    assert reopened.search(NS, query="note 3 about tea", limit=1)[0].key == "k3"
    with pytest.raises(EmbedderMismatchError, match="was built with"):
        shelf(FakeEmbedder(DIMS))  # the old embedder is now simply another one
