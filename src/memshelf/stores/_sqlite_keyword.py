"""Keyword search for the SQLite store: FTS5 and bm25, scoped by rowid range.

Keyword rows are keyed by namespace number and item id (see
``_sqlite_schema.ITEM_BITS``), so a search in one namespace, or in a few, seeks
to their rowid ranges; FTS5 scores only those rows and takes each word's rarity
from the whole index, so scores from several ranges compare. Which words are
searched at all (below) is decided by counts within the search's own scope. A prefix over
many namespaces is scoped by its opaque tag token instead.

What costs time is bm25 scoring every row that matches a word. So a query keeps
its words rarest first while the items they are in add up to at most
``KEYWORD_BUDGET`` (its rarest word always, if that one is in at most
``KEYWORD_MAX_DOCS`` items). On LoCoMo questions over 100,000 real sentences
this scores ~4x fewer rows and finds more of the evidence than every word did;
on LoCoMo's own small conversations evidence recall is unchanged
(BENCHMARKS.md, issue 12): a word in a thousand items mostly adds noise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from memshelf.stores import _query as q
from memshelf.stores._sqlite_schema import ITEM_BITS, ITEM_MASK

# A word in more documents than this says little about which one is meant, and
# scoring its matches is what makes keyword search slow in a big store.
KEYWORD_MAX_DOCS = 2000
# A query's words, rarest first, while the items they are in add up to at most this
# (the rarest one always): it bounds the rows bm25 scores, and so the time it takes.
KEYWORD_BUDGET = 1000
KEYWORD_HITS = 200
# Up to this many namespaces are searched range by range; more through their tag.
KEYWORD_RANGES = 8

_SELECT = "SELECT rowid, -bm25(items_fts, 1.0, 0.0) AS s FROM items_fts WHERE items_fts MATCH ?"


def select_terms(
    conn: sqlite3.Connection,
    query: str,
    namespace_ids: Sequence[int] | None = None,
    prefix: tuple[str, ...] = (),
) -> list[str]:
    """The query's words worth matching: the rarest ones, within the budget above.

    A word's items are counted within the search's namespaces (``namespace_ids``, as
    for ``keyword_hits``), so another owner's items never turn a word off here."""
    terms = q.keyword_terms(query)
    if not terms:
        return []
    marks = ",".join("?" * len(terms))
    counts: dict[str, int] = dict(
        conn.execute(
            f"SELECT term, doc FROM items_fts_terms WHERE term IN ({marks})", terms
        ).fetchall()
    )
    if namespace_ids is not None:  # a word in no item anywhere is in none of these
        counts = {t: _scoped_count(conn, t, namespace_ids, prefix) for t in terms if counts.get(t)}
    return budget_terms(counts)


def _scoped_count(
    conn: sqlite3.Connection, term: str, namespace_ids: Sequence[int], prefix: tuple[str, ...]
) -> int:
    """Items under the namespaces holding ``term``, counted up to ``KEYWORD_MAX_DOCS + 1``
    (past that the word is dropped anyway, so a common word costs no more)."""
    cap = KEYWORD_MAX_DOCS + 1
    text = f'text : "{term}"'
    count = "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ?"
    if len(namespace_ids) > KEYWORD_RANGES:
        match = f'tags : "{q.prefix_tag(prefix)}" AND {text}'
        return int(conn.execute(count + " LIMIT ?)", (match, cap)).fetchone()[0])
    found = 0
    for ns_id in namespace_ids:
        low = ns_id << ITEM_BITS
        found += conn.execute(
            count + " AND rowid BETWEEN ? AND ? LIMIT ?)", (text, low, low | ITEM_MASK, cap - found)
        ).fetchone()[0]
        if found >= cap:
            break
    return found


def budget_terms(counts: Mapping[str, int]) -> list[str]:
    """The words worth matching, given how many items hold each: rarest first while
    their items add up to the budget. A word in no item or in more than
    ``KEYWORD_MAX_DOCS`` is dropped; the rarest one left is always kept."""
    ranked = sorted((n, t) for t, n in counts.items() if 0 < n <= KEYWORD_MAX_DOCS)
    chosen: list[str] = []
    docs = 0
    for count, term in ranked:
        if chosen and docs + count > KEYWORD_BUDGET:
            break
        chosen.append(term)
        docs += count
    return chosen


def keyword_hits(
    conn: sqlite3.Connection,
    query: str,
    namespace_ids: Sequence[int] | None,
    prefix: tuple[str, ...],
) -> dict[int, float]:
    """Item id -> bm25 score scaled to (0, 1], for the best ``KEYWORD_HITS`` matches.

    ``namespace_ids`` are the numbers of the namespaces under ``prefix`` (None: the
    whole store, when ``prefix`` is empty)."""
    if namespace_ids is not None and not namespace_ids:
        return {}
    terms = select_terms(conn, query, namespace_ids, prefix)
    if not terms:
        return {}
    text = "text : (" + " OR ".join(f'"{t}"' for t in terms) + ")"
    order = " ORDER BY s DESC LIMIT ?"
    rows: list[tuple[int, float]] = []
    if namespace_ids is None:
        rows = conn.execute(_SELECT + order, (text, KEYWORD_HITS)).fetchall()
    elif len(namespace_ids) <= KEYWORD_RANGES:
        for ns_id in namespace_ids:
            low = ns_id << ITEM_BITS
            rows += conn.execute(
                _SELECT + " AND rowid BETWEEN ? AND ?" + order,
                (text, low, low | ITEM_MASK, KEYWORD_HITS),
            ).fetchall()
        if len(namespace_ids) > 1:
            rows = sorted(rows, key=lambda r: -r[1])[:KEYWORD_HITS]
    else:
        match = f'tags : "{q.prefix_tag(prefix)}" AND {text}'
        rows = conn.execute(_SELECT + order, (match, KEYWORD_HITS)).fetchall()
    if not rows:
        return {}
    best = max(r[1] for r in rows) or 1.0
    return {int(r[0]) & ITEM_MASK: float(r[1]) / best for r in rows}
