"""An imported memory expires like one written directly (review finding, issue 17).

``import_facts`` stages its puts through ``shelf._Staged``; ``BaseStore.put`` takes
the default TTL from the store it is called on, so the stage must carry the real
store's ``ttl_config`` or imported memories would never expire.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memshelf.memory.shelf import import_facts, put_memory
from memshelf.stores.sqlite import SqliteStore

TTL_MINUTES = 90 * 24 * 60.0


def test_an_imported_memory_gets_the_default_ttl(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SqliteStore(path, ttl={"default_ttl": TTL_MINUTES, "refresh_on_read": True}) as store:
        put_memory(store, "alice", "direct", {"text": "prefers green tea", "kind": "fact"})
        record = {"key": "imported", "value": {"text": "likes hiking", "kind": "fact"}}
        assert import_facts(store, "alice", [record]) == 1
    with sqlite3.connect(path) as conn:
        rows = dict(
            (key, (ttl, expires))
            for key, ttl, expires in conn.execute(
                "SELECT key, ttl_minutes, expires_at FROM items WHERE key IN (?, ?)",
                ("direct", "imported"),
            )
        )
    assert rows["imported"][0] == rows["direct"][0] == TTL_MINUTES
    # Written a moment apart, both expire 90 days after their write.
    assert rows["imported"][1] == pytest.approx(rows["direct"][1], abs=60.0)
