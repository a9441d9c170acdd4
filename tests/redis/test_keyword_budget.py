"""Redis keyword search keeps a query's rarest words within the SQLite store's budget.

A word in thousands of items must not make every search score thousands of
items (issue 12): the store counts each word's items (a count that stops past
``KEYWORD_MAX_DOCS``) and searches only the rarest words whose items add up to
``KEYWORD_BUDGET``, on a real Redis server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import PutOp

from memshelf.stores._sqlite_keyword import KEYWORD_BUDGET, KEYWORD_MAX_DOCS
from memshelf.stores.redis import RedisStore
from memshelf.stores.sqlite import SqliteStore

NS = ("team", "t1", "findings")
COMMON = KEYWORD_MAX_DOCS + 100  # "common" is in more items than any search scores
HALF = 600  # "alpha" and "beta" each: one fits the budget beside "zeta", both do not
ZETA = (5, HALF + 100, 1500)  # the first also has alpha, the second beta


def text(i: int) -> str:
    words = ["common", "note", str(i)]
    if i < HALF:
        words.append("alpha")
    elif i < 2 * HALF:
        words.append("beta")
    if i in ZETA:
        words.append("zeta")
    return " ".join(words)


@pytest.fixture(scope="module")
def store(redis_url: str) -> Iterator[RedisStore]:
    """A keyword-only store with one big namespace (no embedder: keyword hits decide)."""
    opened = RedisStore(redis_url, prefix="kw-" + uuid.uuid4().hex[:10])
    for base in range(0, COMMON, 500):
        opened.batch(
            [PutOp(NS, f"k{i}", {"text": text(i)}) for i in range(base, min(COMMON, base + 500))]
        )
    yield opened
    opened.drop()
    opened.close()


@pytest.fixture
def text_queries(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keyword queries the store sends to the items index (``@text:`` clauses)."""
    sent: list[str] = []
    search = store._ft_search

    def recording(index: str, query: str, *args: Any) -> list[dict[bytes, Any]]:
        if "@text:" in query:
            sent.append(query)
        return search(index, query, *args)

    monkeypatch.setattr(store, "_ft_search", recording)
    return sent


def test_word_counts_stop_past_the_most_a_search_scores(store: RedisStore) -> None:
    from memshelf.stores._redis_keyword import term_counts

    counts = term_counts(store._r, store._items_index, ["common", "alpha", "zeta", "absent"])
    assert counts == {"common": KEYWORD_MAX_DOCS + 1, "alpha": HALF, "zeta": 3, "absent": 0}


def test_only_the_rarest_words_within_the_budget_are_searched(
    store: RedisStore, text_queries: list[str]
) -> None:
    hits = store.search(NS, query="common alpha beta zeta", limit=3)
    (sent,) = text_queries
    words = set(sent.split("@text:(")[1].rstrip(")").split("|"))
    assert words == {"zeta", "alpha"}  # 3 + 600 items; beta's 600 more would pass 1,000
    assert HALF + 3 <= KEYWORD_BUDGET < 2 * HALF + 3
    assert {h.key for h in hits} == {f"k{i}" for i in ZETA}  # the rarest word's items lead
    assert all(h.score is not None and h.score > 0 for h in hits)


def test_a_word_in_too_many_items_is_never_searched(
    store: RedisStore, text_queries: list[str]
) -> None:
    hits = store.search(NS, query="common", limit=5)
    assert text_queries == []
    assert len(hits) == 5 and all(h.score is None for h in hits)  # newest first, unscored


@pytest.mark.parametrize(
    ("counts", "chosen"),
    [
        ({"a": 0, "b": 5}, ["b"]),
        ({"x": KEYWORD_MAX_DOCS + 1, "y": 10}, ["y"]),
        ({"p": 400, "q": 400, "r": 400}, ["p", "q"]),
        ({"big": 900, "small": 50, "mid": 100}, ["small", "mid"]),
        ({"wide": KEYWORD_BUDGET + 500, "wider": KEYWORD_BUDGET + 600}, ["wide"]),
        ({}, []),
    ],
)
def test_budget_rule_matches_the_sqlite_store(
    counts: dict[str, int], chosen: list[str], tmp_path: Path
) -> None:
    """Rarest first within the budget; the rarest word is kept even past it: the words
    the Redis rule picks are those the SQLite store picks from a real file's counts."""
    from memshelf.stores._redis_keyword import budget_terms
    from memshelf.stores._sqlite_keyword import select_terms

    with SqliteStore(tmp_path / "budget.db") as sqlite:  # word w is in counts[w] items
        most = max(counts.values(), default=0)
        for start in range(0, most, 1000):
            sqlite.batch(
                [
                    PutOp(NS, f"k{i}", {"text": " ".join(w for w, n in counts.items() if i < n)})
                    for i in range(start, min(most, start + 1000))
                ]
            )
        picked = select_terms(sqlite._conn, " ".join(counts))
    assert picked == chosen
    assert budget_terms(counts) == chosen


def test_another_owners_items_leave_keyword_search_alone(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words are counted within the search's namespaces: bob's many items holding "tea"
    must not turn the word off for alice (nor tell her how many bob has)."""
    from memshelf.stores import _redis_keyword, _sqlite_keyword

    monkeypatch.setattr(_sqlite_keyword, "KEYWORD_MAX_DOCS", 3)
    monkeypatch.setattr(_redis_keyword, "KEYWORD_MAX_DOCS", 3)
    opened = RedisStore(redis_url, prefix="kw-" + uuid.uuid4().hex[:10])
    try:
        opened.put(("memories", "alice"), "tea", {"text": "prefers green tea"})
        opened.put(("memories", "alice"), "other", {"text": "walks the dog"})
        for i in range(5):  # more than KEYWORD_MAX_DOCS of bob's items hold "tea"
            opened.put(("memories", "bob"), f"b{i}", {"text": f"tea note {i}"})
        hits = opened.search(("memories", "alice"), query="tea", limit=2)
        assert hits[0].key == "tea" and hits[0].score is not None and hits[0].score > 0
        assert hits[1].score is None
        assert all(h.score is None for h in opened.search(("memories", "bob"), query="tea"))
    finally:
        opened.drop()
        opened.close()
