"""Namespace queries for the SQLite store, read from the small ``namespaces`` table.

Triggers keep one row per namespace that holds items (expired ones included
until swept): its order key (labels joined by NUL, so byte order is tuple
order), its depth, how many items it holds and its number (which names its
range of keyword rows). Listing namespaces walks that table in key order and
reads only what a page needs; items are touched only to find namespaces whose
every item has expired.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from langgraph.store.base import ListNamespacesOp, MatchCondition

from memshelf.stores import _query as q
from memshelf.stores._sqlite_schema import LIVE

_NS_PAGE = 2000


def under(conn: sqlite3.Connection, prefix: tuple[str, ...]) -> list[tuple[str, int]]:
    """(encoded namespace, number) of each namespace holding items (expired or not)
    at or under ``prefix``."""
    if not prefix:
        return conn.execute("SELECT ns, id FROM namespaces").fetchall()
    low = q.order_key(prefix)
    return conn.execute(
        "SELECT ns, id FROM namespaces WHERE key >= ? AND key < ?", (low, low + b"\x01")
    ).fetchall()


def held_under(conn: sqlite3.Connection, prefix: tuple[str, ...]) -> tuple[int, int]:
    """(namespaces, items) at or under ``prefix``, expired items included."""
    key = q.order_key(prefix)
    found = conn.execute(
        "SELECT count(*), coalesce(sum(items), 0) FROM namespaces WHERE key >= ? AND key < ?",
        (key, key + b"\x01"),
    ).fetchone()
    return int(found[0]), int(found[1])


def count(conn: sqlite3.Connection) -> int:
    """How many namespaces hold items (expired ones included until swept)."""
    return int(conn.execute("SELECT count(*) FROM namespaces").fetchone()[0])


def list_namespaces(
    conn: sqlite3.Connection, op: ListNamespacesOp, now: float
) -> list[tuple[str, ...]]:
    """Namespaces from the namespaces table, in tuple order, reading only what the page needs.

    SQL keeps the prefix range, depth and (as GLOB) every condition, exactly when no
    condition has a wildcard; then, with nothing to truncate and nothing expired,
    SQL also pages. Otherwise Python re-checks and truncates while walking, stops at
    offset + limit, and under ``max_depth`` jumps past all below each truncated name.
    """
    conditions = tuple(op.match_conditions or ())
    depth, offset, limit = op.max_depth, op.offset, op.limit
    if offset < 0 or limit < 0 or (depth is not None and depth < 1):
        # Python's slice and truncation semantics for odd bounds: list all, then cut.
        found = _walk(conn, conditions, None, None, now)
        return q.list_namespaces(found, conditions, depth, limit, offset)
    if limit == 0:
        return []
    where, args = _ns_where(conditions)
    exact = all("*" not in c.path for c in conditions)
    # Under max_depth a short page is walked: proving that nothing needs truncating
    # reads the whole range, which only pays off for deep pages.
    deep = depth is None or offset + limit > _NS_PAGE
    if (
        exact
        and deep
        and not _dead_namespaces(conn, now)
        and (depth or 0) >= _deepest(conn, where, args, depth)
    ):
        rows = conn.execute(
            f"SELECT ns FROM namespaces WHERE {where} ORDER BY key LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [q.decode_ns(r[0]) for r in rows]
    return _walk(conn, conditions, depth, offset + limit, now)[offset:]


def _ns_where(conditions: tuple[MatchCondition, ...]) -> tuple[str, list[Any]]:
    """WHERE on the namespaces table keeping every namespace that could match (exactly
    those, when no condition has a wildcard); the first argument is the lowest key."""
    prefix = q.fixed_prefix(conditions)
    where: list[str] = ["key >= ?"]
    args: list[Any] = [q.order_key(prefix)]
    if prefix:
        where.append("key < ?")
        args.append(q.order_key(prefix) + b"\x01")
    min_depth = max((len(c.path) for c in conditions), default=1)
    if min_depth > 1:
        where.append("depth >= ?")
        args.append(min_depth)
    for condition in conditions:
        where.append("(ns GLOB ? OR ns GLOB ?)")
        args += _ns_globs(condition)
    return " AND ".join(where), args


def _ns_globs(condition: MatchCondition) -> tuple[str, str]:
    """Two GLOB patterns, one of which every namespace matching ``condition`` fits.

    A wildcard label becomes ``*`` (which may also span dots: a superset, and Python
    re-checks); GLOB's own ``*``, ``?`` and ``[`` in a label are matched literally.
    """
    path = q.SEP.join(
        "*" if label == "*" else "".join(f"[{c}]" if c in "*?[" else c for c in label)
        for label in condition.path
    )
    if condition.match_type == "prefix":
        return path, path + q.SEP + "*"
    return path, "*" + q.SEP + path


def _deepest(conn: sqlite3.Connection, where: str, args: list[Any], max_depth: int | None) -> int:
    """Depth of the deepest namespace the WHERE keeps (0 when ``max_depth`` is None:
    nothing is truncated then, so nothing needs reading)."""
    if max_depth is None:
        return 0
    sql = f"SELECT coalesce(max(depth), 0) FROM namespaces WHERE {where}"
    return int(conn.execute(sql, args).fetchone()[0])


def _dead_namespaces(conn: sqlite3.Connection, now: float) -> set[str]:
    """Namespaces whose every item has expired (not yet swept): usually none, found
    through the expiry index without touching live items."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT ns FROM items AS e WHERE expires_at IS NOT NULL "
            "AND expires_at <= ? AND NOT EXISTS (SELECT 1 FROM items "
            f"WHERE items.ns = e.ns AND {LIVE})",
            (now, now),
        )
    }


def _walk(
    conn: sqlite3.Connection,
    conditions: tuple[MatchCondition, ...],
    max_depth: int | None,
    want: int | None,
    now: float,
) -> list[tuple[str, ...]]:
    """Matching live namespaces (truncated to ``max_depth``) in order, up to ``want``."""
    where, args = _ns_where(conditions)
    dead = _dead_namespaces(conn, now)
    sql = f"SELECT key, ns FROM namespaces WHERE {where} ORDER BY key LIMIT ?"
    full = _NS_PAGE if want is None else min(max(2 * want, 64), _NS_PAGE)
    page = full if max_depth is None else min(full, 64)
    found: list[tuple[str, ...]] = []
    cursor: bytes = args[0]
    while True:
        rows = conn.execute(sql, (cursor, *args[1:], page)).fetchall()
        for key, ns in rows:
            if key < cursor:  # jumped past the rest of this page: read from the cursor
                page = 16  # again, a little at a time while jumps keep coming
                break
            namespace = q.decode_ns(ns)
            if ns in dead or not all(q.does_match(c, namespace) for c in conditions):
                continue
            if max_depth is not None and len(namespace) > max_depth:
                namespace = namespace[:max_depth]
                cursor = q.order_key(namespace) + b"\x01"  # past it and all below it
            if not found or found[-1] != namespace:  # (below a kept one: same truncation)
                found.append(namespace)
                if want is not None and len(found) >= want:
                    return found
        else:
            if len(rows) < page:
                return found
            cursor = max(cursor, rows[-1][0] + b"\x00")
            page = min(page * 4, full)  # no jump in a whole page: read more at once
