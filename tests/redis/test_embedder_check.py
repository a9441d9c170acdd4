"""Opening a Redis store checks the embedder against the vectors it holds, and never guesses.

Only a missing vector index means "no vectors"; any other refusal (here a real
ACL that forbids FT.SEARCH) stops the open, so a different embedder cannot
claim the store and drop its vector index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import StoreError
from memshelf.stores.redis import RedisStore, connect, drop_prefix

NS = ("memories", "sukhveer")


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = "check-" + uuid.uuid4().hex[:10]
    yield name
    client = connect(redis_url)
    drop_prefix(client, name)
    client.close()


def _index(dims: int, seed: int = 0) -> dict[str, object]:
    return {"embed": FakeEmbedder(dims, seed=seed), "dims": dims, "fields": ["text"]}


def test_a_missing_vector_index_counts_as_no_vectors(redis_url: str, prefix: str) -> None:
    with RedisStore(redis_url, index=_index(64), prefix=prefix) as store:
        store.put(NS, "k", {"text": "tea with milk"})
        assert store._vector_count() == 1
        store._drop_vector_index()
        assert store._vector_count() == 0


def test_a_refused_vector_count_stops_the_open(redis_url: str, prefix: str) -> None:
    first = RedisStore(redis_url, index=_index(64), prefix=prefix)
    first.put(NS, "k", {"text": "tea with milk"})
    user, password = "nosearch-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    admin = connect(redis_url)
    admin.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-ft.search"],
    )
    try:
        limited = redis_url.replace("redis://", f"redis://{user}:{password}@", 1)
        with pytest.raises(StoreError, match="refused to count the vectors") as err:
            RedisStore(limited, index=_index(128, seed=7), prefix=prefix)
        assert "FT.SEARCH" in str(err.value) and "+@search" in str(err.value)
    finally:
        admin.acl_deluser(user)
        admin.close()
    assert first.meta("embedder") == "fake:hashed-words:64:0/64"  # not claimed by the other
    assert first.meta("dims") == "64"
    assert first.search(NS, query="tea with milk", limit=1)[0].key == "k"  # index intact
    first.close()
