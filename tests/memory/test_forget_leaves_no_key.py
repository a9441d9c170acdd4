"""A forgotten fact cannot be confirmed by guessing it.

Memory keys are a hash of the fact's text, so any record left under the key (a ``delete``
tombstone in its history) lets whoever saw the key check a guess. A forget removes every
copy, the key included; a plain delete keeps its text-free ``delete`` event.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.errors import NotFoundError
from memshelf.memory import forget, history
from memshelf.memory.types import fact_key
from memshelf.ops import memories as ops
from memshelf.stores import open_store
from tests.service.conftest import make_keys, running, service_settings

FACT = "Alice deploys on Fly.io"


def _records_naming(store: BaseStore, key: str) -> list[str]:
    """Every record in the store whose key or value holds ``key``."""
    found: list[str] = []
    for namespace in store.list_namespaces(limit=10**6):
        offset = 0
        while page := store.search(namespace, limit=500, offset=offset, refresh_ttl=False):
            offset += len(page)
            found += [
                f"{namespace}/{item.key}"
                for item in page
                if key in item.key or key in json.dumps(item.value, default=str)
            ]
    return found


@pytest.fixture(params=["sqlite", "redis"])
def settings_on(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return service_settings(tmp_path, request.param, redis_url)


def test_forget_leaves_no_record_under_the_key_but_delete_keeps_its_event(
    settings_on: Settings,
) -> None:
    with open_store(settings=settings_on) as store:
        key = ops.add_memory(store, "alice", FACT).key
        assert key == fact_key(FACT)  # why a leftover record is a leak
        ops.edit_memory(store, "alice", key, FACT + " and Render")
        assert [f.key for f in ops.forget_memories(store, "alice", key)] == [key]
        assert history(store, "alice", key) == []
        with pytest.raises(NotFoundError):
            ops.memory_history(store, "alice", key)
        assert _records_naming(store, key) == []

        kept = ops.add_memory(store, "alice", "Alice drinks green tea").key
        assert forget(store, "alice", "green tea") == ["Alice drinks green tea"]
        assert _records_naming(store, kept) == []

        deleted = ops.add_memory(store, "alice", "Alice cycles to work").key
        ops.delete_memory(store, "alice", deleted)
        assert [e["op"] for e in ops.memory_history(store, "alice", deleted)] == ["delete"]


def test_forget_over_http_then_history_is_404(settings_on: Settings) -> None:
    keys = make_keys(settings_on)
    with running(settings_on) as url:
        alice = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {keys['alice']}"}, timeout=60
        )
        with alice:
            key = alice.post("/v1/memories", json={"text": FACT}).json()["key"]
            assert alice.get(f"/v1/memories/{key}/history").status_code == 200
            gone = alice.post("/v1/memories/forget", json={"query": key})
            assert gone.status_code == 200, gone.text
            assert alice.get(f"/v1/memories/{key}").status_code == 404
            assert alice.get(f"/v1/memories/{key}/history").status_code == 404
    with open_store(settings=settings_on) as store:
        assert _records_naming(store, key) == []
