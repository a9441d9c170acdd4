"""SQLite refresh-on-read without a write per read, and sweeps outside user requests."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import fake_index

TTL = {"default_ttl": 60.0, "refresh_on_read": True}
NS = ("m", "u")


def _expires(path: Path, key: str) -> float:
    with sqlite3.connect(path) as conn:
        return float(
            conn.execute("SELECT expires_at FROM items WHERE key = ?", (key,)).fetchone()[0]
        )


def _age(path: Path, key: str, seconds: float) -> None:
    """Pretend the item was last read ``seconds`` ago."""
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE items SET expires_at = expires_at - ? WHERE key = ?", (seconds, key))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "ttl.db", index=fake_index(), ttl=TTL)
    yield s
    s.close()


def test_a_read_does_not_wait_for_another_writer(store: SqliteStore, tmp_path: Path) -> None:
    store.put(NS, "k", {"text": "tea"})
    _age(tmp_path / "ttl.db", "k", 600)
    blocker = sqlite3.connect(tmp_path / "ttl.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process is inside a long write
    got: list[object] = []
    reader = threading.Thread(
        target=lambda: got.extend([store.get(NS, "k"), store.search(NS, query="tea")])
    )
    reader.start()
    reader.join(timeout=5)
    finished = not reader.is_alive()
    blocker.execute("ROLLBACK")
    reader.join()
    assert finished, "a read of an item with a TTL waited for the write lock"
    assert got[0] is not None and got[1]
    blocker.close()


def test_queued_refreshes_are_written_without_another_request(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "ttl.db"
    store.put(NS, "k", {"text": "tea"})
    _age(path, "k", 600)
    aged = _expires(path, "k")
    read_at = time.time()
    assert store.get(NS, "k") is not None
    deadline = time.monotonic() + 5
    while _expires(path, "k") == aged and time.monotonic() < deadline:
        time.sleep(0.05)
    after = _expires(path, "k")
    assert after > aged
    assert abs(after - (read_at + 3600.0)) < 5.0  # from the read's time, by the item's TTL


def test_repeated_reads_within_the_slack_write_nothing(store: SqliteStore) -> None:
    store.put(NS, "k", {"text": "tea"})
    changes = store._conn.total_changes
    for _ in range(20):
        store.get(NS, "k")
        store.search(NS, query="tea")
    store.flush_refreshes()
    assert store._conn.total_changes == changes


def test_an_item_about_to_expire_is_refreshed_by_the_read_itself(tmp_path: Path) -> None:
    path = tmp_path / "short.db"
    store = SqliteStore(path, index=fake_index(), ttl=TTL)
    store.put(NS, "k", {"text": "tea"}, ttl=0.2)  # 12 s: inside the inline window
    before = _expires(path, "k")
    time.sleep(0.3)
    store.get(NS, "k")
    assert _expires(path, "k") > before  # written before the read returned
    store.close()


def test_a_queued_refresh_never_revives_an_expired_or_rewritten_item(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "ttl.db"
    store.put(NS, "gone", {"text": "tea"})
    store.put(NS, "new", {"text": "coffee"})
    _age(path, "gone", 600)
    _age(path, "new", 600)
    store.get(NS, "gone")
    store.get(NS, "new")
    _age(path, "gone", 3600)  # expired before the queued refresh is written
    store.put(NS, "new", {"text": "coffee again"}, ttl=1.0)  # a later put owns the expiry
    put_expiry = _expires(path, "new")
    store.flush_refreshes()
    assert _expires(path, "gone") < time.time()
    assert store.get(NS, "gone") is None
    assert _expires(path, "new") == put_expiry


def test_close_writes_queued_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "close.db"
    store = SqliteStore(path, index=fake_index(), ttl=TTL)
    store.put(NS, "k", {"text": "tea"})
    _age(path, "k", 600)
    aged = _expires(path, "k")
    store.get(NS, "k")
    store.close()
    assert _expires(path, "k") > aged
    assert not store._maintainer or not store._maintainer.is_alive()
