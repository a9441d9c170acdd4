"""Keyword search for the SQLite store: FTS5 and bm25, scoped by rowid range.

Keyword rows are keyed by namespace number and item id (see
``_sqlite_schema.ITEM_BITS``), so a search in one namespace, or in a few, seeks
to their rowid ranges; FTS5 scores only those rows and takes each word's rarity
from the whole index, so scores from several ranges compare. A prefix over
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
from collections.abc import Sequence

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


def select_terms(conn: sqlite3.Connection, query: str) -> list[str]:
    """The query's words worth matching: the rarest ones, within the budget above."""
    terms = q.keyword_terms(query)
    if not terms:
        return []
    marks = ",".join("?" * len(terms))
    counts = dict(
        conn.execute(
            f"SELECT term, doc FROM items_fts_terms WHERE term IN ({marks})", terms
        ).fetchall()
    )
    ranked = sorted((counts[t], t) for t in terms if 0 < counts.get(t, 0) <= KEYWORD_MAX_DOCS)
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
    terms = select_terms(conn, query)
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
