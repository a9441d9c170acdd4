"""Keyword search for the Redis store: BM25 over the query's rarest words, within a budget.

The query engine scores every item that matches any of a query's words, so one
common word ("work" in a team's 100,000 findings) would make every search score
most of a namespace. As in the SQLite store (``_sqlite_keyword.py``), a query
keeps its words rarest first while the items they are in add up to at most
``KEYWORD_BUDGET`` (its rarest word always, if that one is in at most
``KEYWORD_MAX_DOCS`` items), so the rows scored stay bounded whatever the words.

How many items hold a word is counted within the search's scope (its
namespaces, as in the SQLite store) by one aggregation per word that stops counting past
``KEYWORD_MAX_DOCS``: ``LIMIT`` before ``GROUPBY`` ends the scan there, so a
word in a million items costs no more than one in two thousand. All the words'
counts travel in one pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from memshelf.stores import _query as q
from memshelf.stores._sqlite_keyword import KEYWORD_MAX_DOCS, budget_terms

if TYPE_CHECKING:
    import redis

KEYWORD_HITS = 200


def _word(term: str) -> str:
    """A term as query syntax: ``keyword_terms`` yields ``\\w+`` words; ``_`` is escaped."""
    return term.replace("_", "\\_")


def term_counts(
    r: redis.Redis, index: str, terms: Sequence[str], scope: str = ""
) -> dict[str, int]:
    """Items holding each term among those ``scope`` selects (the search's own
    namespaces, so another owner's items never turn a word off), counted up to
    ``KEYWORD_MAX_DOCS + 1``."""
    pipe = r.pipeline(transaction=False)
    for term in terms:
        pipe.execute_command(
            "FT.AGGREGATE", index, f"{scope} @text:({_word(term)})".strip(),
            "LIMIT", 0, KEYWORD_MAX_DOCS + 1,
            "GROUPBY", 0, "REDUCE", "COUNT", 0, "AS", "n", "DIALECT", 2,
        )  # type: ignore[no-untyped-call]  # fmt: skip
    return {term: _count(reply) for term, reply in zip(terms, pipe.execute(), strict=True)}


def _count(reply: dict[bytes, Any]) -> int:
    """The ``n`` of a one-group aggregation reply (RESP3, as ``connect`` asks); 0: no rows."""
    rows = reply.get(b"results") or []
    return int((rows[0].get(b"extra_attributes") or {}).get(b"n") or 0) if rows else 0


def keyword_hits(
    r: redis.Redis,
    index: str,
    scope: str,
    query: str,
    search: Callable[..., list[dict[bytes, Any]]],
) -> dict[bytes, float]:
    """Item key -> BM25 score scaled to (0, 1], for the best ``KEYWORD_HITS`` matches of
    the query's budgeted words among the items ``scope`` selects (``search``: FT.SEARCH)."""
    terms = q.keyword_terms(query)
    if not terms:
        return {}
    chosen = budget_terms(term_counts(r, index, terms, scope))
    if not chosen:
        return {}
    words = "|".join(_word(t) for t in chosen)
    results = search(
        index,
        f"{scope} @text:({words})".strip(),
        "SCORER", "BM25STD", "WITHSCORES", "NOCONTENT", "LIMIT", 0, KEYWORD_HITS,
    )  # fmt: skip
    scores = {hit[b"id"]: float(hit[b"score"]) for hit in results}
    best = max(scores.values(), default=0.0) or 1.0
    return {key: s / best for key, s in scores.items()}
