"""SQLite keyword search: scoped by rowid range, cut to a query's rarest words, and the
schema step that brought it (an old file is upgraded in place and answers as before).

Keyword-only stores (no embedder) make every score here a keyword score.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from memshelf.errors import StoreError
from memshelf.stores import _query as q
from memshelf.stores import _sqlite_keyword as keyword
from memshelf.stores._sqlite_schema import ITEM_MASK
from memshelf.stores.sqlite import _MIGRATIONS, SCHEMA_VERSION, SqliteStore

ANN, BOB = ("memories", "ann"), ("memories", "bob")


def _scored(store: SqliteStore, prefix: tuple[str, ...], query: str) -> list[tuple[str, float]]:
    """(key, score) of the keyword hits, best first (unscored listing tails left out)."""
    hits = store.search(prefix, query=query, limit=100)
    return [(h.key, round(h.score, 9)) for h in hits if h.score is not None]


def _keyword_rows(store: SqliteStore) -> int:
    return int(store._conn.execute("SELECT count(*) FROM items_fts").fetchone()[0])


# ----------------------------------------------------------------- upgrade
OLD_ITEMS = [
    (ANN, "a1", "Ann keeps a zebra finch called Pip"),
    (ANN, "a2", "Ann's zebra crossing photo won a prize"),
    (ANN, "a3", "Ann deploys on Fly.io"),
    (BOB, "b1", "Bob painted a zebra on the garage door"),
    (("team", "t1", "findings"), "f1", "zebra mussels spread through the lake"),
]


def _write_schema_4_file(path: Path) -> None:
    """A file as memshelf's schema 4 wrote it: keyword rows keyed by item id, tagged with
    one token per namespace prefix (the released steps 1-4 are never edited)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for step in range(1, 5):
        for statement in _MIGRATIONS[step]:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    now = time.time()
    for namespace, key, text in OLD_ITEMS:
        item_id = conn.execute(
            "INSERT INTO items(ns, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "RETURNING id",
            (q.encode_ns(namespace), key, json.dumps({"text": text}), now, now),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO items_fts(rowid, text, tags) VALUES (?, ?, ?)",
            (item_id, text, " ".join(q.ns_tags(namespace))),
        )
    conn.close()


def _schema_4_ranking(path: Path, prefix: tuple[str, ...], query: str) -> list[str]:
    """What schema 4 ranked for a query: its own FTS query, on its own file."""
    conn = sqlite3.connect(path)
    text = "text : (" + " OR ".join(f'"{t}"' for t in q.keyword_terms(query)) + ")"
    match = f'tags : "{q.prefix_tag(prefix)}" AND {text}' if prefix else text
    rows = conn.execute(
        "SELECT i.key, -bm25(items_fts, 1.0, 0.0) AS s FROM items_fts "
        "JOIN items AS i ON i.id = items_fts.rowid WHERE items_fts MATCH ? ORDER BY s DESC",
        (match,),
    ).fetchall()
    conn.close()
    return [r[0] for r in rows]


def test_a_schema_4_file_is_upgraded_in_place_and_ranks_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_schema_4_file(path)
    before = {p: _schema_4_ranking(path, p, "zebra photo") for p in (ANN, ("memories",), ())}
    assert before[ANN] == ["a2", "a1"]

    store = SqliteStore(path)
    assert store.stats()["schema"] == SCHEMA_VERSION == 5
    assert store.stats()["namespaces"] == 3
    for prefix, keys in before.items():
        assert [k for k, _ in _scored(store, prefix, "zebra photo")] == keys
    assert _keyword_rows(store) == len(OLD_ITEMS)

    store.delete(ANN, "a1")  # the old rows are the new index's: a delete takes its row
    assert _keyword_rows(store) == len(OLD_ITEMS) - 1
    store.put(("memories", "cy"), "c1", {"text": "Cy saw a zebra"})
    assert [k for k, _ in _scored(store, ("memories", "cy"), "zebra")] == ["c1"]
    assert [k for k, _ in _scored(store, ANN, "zebra")] == ["a2"]
    store.close()

    store = SqliteStore(path)  # opening again changes nothing
    assert store.stats()["schema"] == 5
    assert [k for k, _ in _scored(store, ("memories",), "zebra")] == ["c1", "a2", "b1"]
    store.close()


# ----------------------------------------------------------------- scoping
def test_a_namespace_search_sees_only_its_own_keyword_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.put(ANN, "a", {"text": "zebra stripes"})
    store.put(BOB, "b", {"text": "zebra zebra zebra"})
    store.put(("memories", "ann", "archive"), "c", {"text": "zebra zebra"})
    assert [k for k, _ in _scored(store, ANN, "zebra")] == ["c", "a"]
    assert [k for k, _ in _scored(store, BOB, "zebra")] == ["b"]
    assert _scored(store, ("memories", "an"), "zebra") == []
    store.close()


@pytest.mark.parametrize("ranges", [8, 0])
def test_a_prefix_search_ranks_as_the_whole_store_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ranges: int
) -> None:
    """Scores from several namespaces' ranges (or, past KEYWORD_RANGES, the prefix's tag)
    compare: a word's rarity comes from the whole index either way."""
    monkeypatch.setattr(keyword, "KEYWORD_RANGES", ranges)
    store = SqliteStore(tmp_path / "s.db")
    words = ["kiwi", "kiwi mango", "mango papaya kiwi", "papaya", "kiwi kiwi lime"]
    for n in range(12):
        namespace = ("fruit", f"u{n % 4}") if n < 10 else ("veg", "x")
        store.put(namespace, f"k{n}", {"text": words[n % len(words)] + f" note {n}"})
    whole = _scored(store, (), "kiwi papaya")
    under = _scored(store, ("fruit",), "kiwi papaya")
    assert under == [(k, s) for k, s in whole if int(k[1:]) < 10]
    assert len(under) == 10
    store.close()


def test_a_deleted_namespace_leaves_no_keyword_row_behind(tmp_path: Path) -> None:
    """A namespace's number is reused after its last item goes; none of its keyword rows
    may be left to surface in the namespace that gets the number next."""
    store = SqliteStore(tmp_path / "s.db", ttl={"default_ttl": 60.0})
    store.put(("memories", "old"), "k", {"text": "my secret zebra"})
    store.put(("memories", "gone"), "k", {"text": "another zebra"}, ttl=0.001)
    store.delete(("memories", "old"), "k")
    time.sleep(0.1)
    assert store.sweep_ttl() == 1
    assert _keyword_rows(store) == 0
    store.put(("memories", "new"), "k", {"text": "plain text"})
    store.put(("memories", "newer"), "k", {"text": "more plain text"})
    assert _scored(store, ("memories", "new"), "zebra") == []
    assert _scored(store, ("memories", "newer"), "zebra") == []
    assert _scored(store, (), "zebra") == []
    store.close()


# ----------------------------------------------------------------- word choice
DOCS = {"alpha": 1, "bravo": 2, "charlie": 3, "delta": 4, "echo": 5}


def _word_store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    for word, count in DOCS.items():
        for n in range(count):
            store.put(ANN, f"{word}{n}", {"text": f"{word} item"})
    return store


def _words_hit(store: SqliteStore, query: str) -> set[str]:
    return {k.rstrip("0123456789") for k, _ in _scored(store, ANN, query)}


def test_a_query_keeps_its_rarest_words_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words are kept rarest first while the items they are in add up to KEYWORD_BUDGET:
    the commonest words cost the most to score and, on real data, rank worse
    (BENCHMARKS.md, issue 12)."""
    store = _word_store(tmp_path / "s.db")
    everything = "echo delta charlie bravo alpha"
    assert _words_hit(store, everything) == set(DOCS)  # 15 items: far under the budget
    monkeypatch.setattr(keyword, "KEYWORD_BUDGET", 10)  # 1 + 2 + 3 + 4 items; echo is 5 more
    assert _words_hit(store, everything) == {"alpha", "bravo", "charlie", "delta"}
    assert _words_hit(store, "echo") == {"echo"}  # alone, a common word still counts
    monkeypatch.setattr(keyword, "KEYWORD_BUDGET", 6)
    assert _words_hit(store, "delta charlie bravo alpha") == {"alpha", "bravo", "charlie"}
    monkeypatch.setattr(keyword, "KEYWORD_BUDGET", 0)  # the rarest word always
    assert _words_hit(store, "delta charlie bravo alpha") == {"alpha"}
    monkeypatch.setattr(keyword, "KEYWORD_MAX_DOCS", 3)  # a word in over 3 items: never
    assert _words_hit(store, "delta echo") == set()
    store.close()


# ----------------------------------------------------------------- limits
def test_a_file_past_its_item_ids_refuses_writes_clearly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.put(("x",), "first", {"text": "hello"})
    store._conn.execute(
        "INSERT INTO items(id, ns, key, value, created_at, updated_at) "
        "VALUES (?, 'x', 'last', '{}', 0, 0)",
        (ITEM_MASK,),
    )
    with pytest.raises(StoreError, match="item ids"):
        store.put(("x",), "next", {"text": "world"})
    assert store.get(("x",), "next") is None
    assert [k for k, _ in _scored(store, ("x",), "hello")] == ["first"]
    store.close()
