"""memshelf's embedded store: a LangGraph ``BaseStore`` in one SQLite file.

Items, their vectors and a keyword index live in one WAL-mode database, so a
put is atomic and durable across restarts. Vector search needs no SQLite
extension (this Python's ``sqlite3`` cannot load any): each namespace's
vectors are cached in process (see ``vectors.py``), searched exactly when
small and through an HNSW index (``ann.py``) past ``AnnConfig.min_rows``.
``PRAGMA data_version`` tells us when another process wrote, and the
``vector_changes`` log which items it touched, so every process sees every
commit without reloading. Keyword search is SQLite FTS5, scoped to a namespace
by opaque per-prefix tokens, and fused with the cosine score. Filters and
namespace listings run in SQL (``_sqlfilter.py``, the ``namespaces`` table),
re-checked in Python. TTL refreshes are queued and written, and expired items
swept, by one maintenance thread per store, never inside a read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langgraph.store.base import (
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)

from memshelf.errors import EmbedderMismatchError, MemshelfError, StoreError
from memshelf.stores import _query as q
from memshelf.stores._sqlfilter import filter_condition
from memshelf.stores.ann import AnnConfig
from memshelf.stores.base import (
    DEFAULT_MAX_VALUE_BYTES,
    MemshelfStore,
    Plan,
    best_first_chunks,
    make_item,
    scan_pages,
    search_page,
)
from memshelf.stores.vectors import VectorBlock, rank_blocks

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
_SQL_CHUNK = 500
_KEYWORD_HITS = 200
# A word in more documents than this says little about which one is meant, and
# scoring its matches is what makes keyword search slow in a big store.
KEYWORD_MAX_DOCS = 2000
# The change log keeps this many entries; a process further behind reloads everything,
# as it also does when catching up would touch more items than a reload reads.
CHANGES_KEPT = 20_000
CHANGES_CATCH_UP = 2_000

# Refresh-on-read without a write per read: an expiry that would move by less than
# this share of the item's TTL (at most REFRESH_SLACK_MAX_S) is left as it is; other
# refreshes are queued and written by the maintenance thread within REFRESH_FLUSH_S,
# unless the item is so close to expiring that the read's own batch must write it.
REFRESH_SLACK = 0.01
REFRESH_SLACK_MAX_S = 60.0
REFRESH_FLUSH_S = 1.0
REFRESH_INLINE_BELOW_S = 30.0

# A namespace's row in the namespaces table: its order key and depth, from items.ns.
_NS_KEY = "CAST(replace({0}.ns, '.', char(0)) AS BLOB)"
_NS_DEPTH = "length({0}.ns) - length(replace({0}.ns, '.', '')) + 1"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            expires_at REAL,
            ttl_minutes REAL,
            index_spec TEXT,
            UNIQUE (ns, key)
        )""",
        "CREATE INDEX items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL",
        "CREATE INDEX items_ns_updated ON items (ns, updated_at)",
        """CREATE TABLE vectors (
            item_id INTEGER NOT NULL,
            path TEXT NOT NULL,
            ns TEXT NOT NULL,
            vec BLOB NOT NULL,
            PRIMARY KEY (item_id, path)
        )""",
        "CREATE INDEX vectors_ns ON vectors (ns)",
        "CREATE VIRTUAL TABLE items_fts USING fts5(text, tags)",
        """CREATE TRIGGER items_delete AFTER DELETE ON items BEGIN
            DELETE FROM vectors WHERE item_id = old.id;
            DELETE FROM items_fts WHERE rowid = old.id;
        END""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
    # Per-term document counts, so searches can skip words too common to rank by.
    2: ["CREATE VIRTUAL TABLE items_fts_terms USING fts5vocab(items_fts, 'row')"],
    # Which items' vectors changed, in commit order, so a process that cached a
    # namespace reloads only those items after another process writes.
    3: [
        """CREATE TABLE vector_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ns TEXT NOT NULL,
            item_id INTEGER NOT NULL
        )""",
        """CREATE TRIGGER vectors_added AFTER INSERT ON vectors BEGIN
            INSERT INTO vector_changes(ns, item_id) VALUES (new.ns, new.item_id);
        END""",
        """CREATE TRIGGER vectors_removed AFTER DELETE ON vectors BEGIN
            INSERT INTO vector_changes(ns, item_id) VALUES (old.ns, old.item_id);
        END""",
    ],
    # One row per namespace that holds items, kept by triggers, so listing namespaces
    # reads this small table instead of every item. ``key`` joins the labels with NUL,
    # so its byte order is the namespace tuples' order (see _query.order_key).
    4: [
        """CREATE TABLE IF NOT EXISTS namespaces (
            key BLOB PRIMARY KEY,
            ns TEXT NOT NULL,
            depth INTEGER NOT NULL,
            items INTEGER NOT NULL
        ) WITHOUT ROWID""",
        f"""CREATE TRIGGER IF NOT EXISTS items_ns_added AFTER INSERT ON items BEGIN
            INSERT INTO namespaces(key, ns, depth, items)
            VALUES ({_NS_KEY.format("new")}, new.ns, {_NS_DEPTH.format("new")}, 1)
            ON CONFLICT(key) DO UPDATE SET items = items + 1;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS items_ns_removed AFTER DELETE ON items BEGIN
            UPDATE namespaces SET items = items - 1 WHERE key = {_NS_KEY.format("old")};
            DELETE FROM namespaces WHERE key = {_NS_KEY.format("old")} AND items <= 0;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS items_ns_moved AFTER UPDATE OF ns ON items
        WHEN new.ns IS NOT old.ns BEGIN
            UPDATE namespaces SET items = items - 1 WHERE key = {_NS_KEY.format("old")};
            DELETE FROM namespaces WHERE key = {_NS_KEY.format("old")} AND items <= 0;
            INSERT INTO namespaces(key, ns, depth, items)
            VALUES ({_NS_KEY.format("new")}, new.ns, {_NS_DEPTH.format("new")}, 1)
            ON CONFLICT(key) DO UPDATE SET items = items + 1;
        END""",
        f"""INSERT OR REPLACE INTO namespaces(key, ns, depth, items)
            SELECT {_NS_KEY.format("items")}, ns, {_NS_DEPTH.format("items")}, count(*)
            FROM items GROUP BY ns""",
    ],
}

_ROW = "id, ns, key, value, created_at, updated_at"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_NS_PAGE = 2000
# A prefix holding more than 1/_BROAD of all items is scanned without the ns index.
_BROAD = 5


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


def _filter_sql(op: SearchOp) -> tuple[str, tuple[Any, ...]]:
    """The search's filter as a SQL prefilter; unknown operators fail here, item or not."""
    q.check_filter(op.filter)
    return filter_condition(op.filter)


def _item(
    row: sqlite3.Row | tuple[Any, ...], score: float | None = None, search: bool = False
) -> Item:
    _, ns, key, value, created, updated = row[:6]
    return make_item(ns, key, value, created, updated, score, search)


class SqliteStore(MemshelfStore):
    """A durable, searchable LangGraph store in a single SQLite file (or ``:memory:``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        keyword_weight: float = q.DEFAULT_KEYWORD_WEIGHT,
        embedder_id: str | None = None,
        verify_embedder: bool = True,
        ann: AnnConfig | None = None,
    ) -> None:
        super().__init__(
            index=index,
            ttl=ttl,
            max_value_bytes=max_value_bytes,
            keyword_weight=keyword_weight,
            embedder_id=embedder_id,
        )
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._blocks: dict[str, VectorBlock] = {}
        self.ann = ann or AnnConfig()  # when a namespace's vectors get an approximate index
        self._data_version = -1
        self._change_seq = 0  # the last vector_changes entry applied to the cached blocks
        self._pending_refresh: dict[int, float] = {}  # item id -> time it was read
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None
        try:
            self._setup(verify_embedder)
        except BaseException:
            self._conn.close()  # a refused file (newer schema, other embedder) is let go
            raise
        if self._sweep_interval_s() is not None:
            self._start_maintenance()

    # ----------------------------------------------------------------- lifecycle
    def _setup(self, verify_embedder: bool) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 10000")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed: forget means gone
        with self._lock, self._tx():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer memshelf (schema {version} > "
                    f"{SCHEMA_VERSION}). Upgrade memshelf: pip install -U memshelf."
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step}")
            if self.embedder_id:
                self._claim_embedder(verify_embedder)

    def _claim_embedder(self, verify: bool) -> None:
        stored = self.meta("embedder")
        if stored and stored != self.embedder_id and verify and self._has_vectors():
            raise EmbedderMismatchError(stored, self.embedder_id or "", self.path)
        if stored != self.embedder_id and (not stored or not self._has_vectors()):
            self._set_meta("embedder", self.embedder_id or "")

    def _has_vectors(self) -> bool:
        return self._conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _disconnect(self) -> None:
        self._stop.set()
        thread = self._maintainer
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:  # waits for a running batch
            try:
                if self._pending_refresh:
                    with self._tx() as conn:
                        self._flush_refreshes(conn)
            finally:
                self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, embedder={self.embedder_id!r})"

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> SqliteStore._Tx:
        return SqliteStore._Tx(self._conn)

    # ----------------------------------------------------------------- batching
    def _execute(
        self,
        ops: list[Op],
        plan: Plan,
        vectors: np.ndarray | None,
        queries: dict[str, np.ndarray],
    ) -> list[Result]:
        with self._lock:
            self._check_open()
            self._sync_with_other_writers()
            now = time.time()
            results: list[Result] = []
            refresh: set[int] = set()
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(self._get(op, now, refresh))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op, queries.get(op.query or ""), now, refresh))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op, now))
                else:
                    results.append(None)
            inline = self._schedule_refreshes(refresh, now) if refresh else set()
            if plan.puts or inline:
                self._write(plan, vectors, inline, now)
            return results

    def _sync_with_other_writers(self) -> None:
        """Bring cached vectors up to date when another connection has committed.

        ``data_version`` changes only for other connections' commits, so our own
        writes never hide theirs. The change log names the items whose vectors moved;
        only those are reloaded, unless the cache is too far behind."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        self._data_version = version
        last = self._change_seq
        newest = self._conn.execute("SELECT coalesce(max(seq), 0) FROM vector_changes").fetchone()[
            0
        ]
        self._change_seq = newest
        if not self._blocks or newest == last:
            return
        oldest = self._conn.execute("SELECT min(seq) FROM vector_changes").fetchone()[0]
        if oldest is None or oldest > last + 1 or newest - last > CHANGES_CATCH_UP:
            self._blocks.clear()
            return
        touched: dict[str, set[int]] = {}
        for ns, item_id in self._conn.execute(
            "SELECT ns, item_id FROM vector_changes WHERE seq > ? AND seq <= ?", (last, newest)
        ):
            if ns in self._blocks:
                touched.setdefault(ns, set()).add(item_id)
        for ns, ids in touched.items():
            block = self._blocks[ns]
            for item_id in ids:
                block.remove(item_id)
            found = list(ids)
            for start in range(0, len(found), _SQL_CHUNK):
                part = found[start : start + _SQL_CHUNK]
                rows = self._conn.execute(
                    f"SELECT item_id, vec FROM vectors WHERE ns = ? AND item_id IN "
                    f"({','.join('?' * len(part))})",
                    (ns, *part),
                ).fetchall()
                self._add_rows(block, rows)

    # ----------------------------------------------------------------- reads
    def _get(self, op: GetOp, now: float, refresh: set[int]) -> Item | None:
        row = self._conn.execute(
            f"SELECT {_ROW}, ttl_minutes FROM items WHERE ns = ? AND key = ? AND {_LIVE}",
            (q.encode_ns(op.namespace), op.key, now),
        ).fetchone()
        if row is None:
            return None
        if row[6] is not None and self._refreshes(op.refresh_ttl):
            refresh.add(row[0])
        return _item(row)

    def _namespaces_under(self, prefix: tuple[str, ...]) -> list[str]:
        """Encoded namespaces holding items (expired or not) at or under ``prefix``."""
        if not prefix:
            return [r[0] for r in self._conn.execute("SELECT ns FROM namespaces")]
        low = q.order_key(prefix)
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT ns FROM namespaces WHERE key >= ? AND key < ?", (low, low + b"\x01")
            )
        ]

    def _block(self, ns: str) -> VectorBlock:
        block = self._blocks.get(ns)
        if block is None:
            rows = self._conn.execute(
                "SELECT item_id, vec FROM vectors WHERE ns = ?", (ns,)
            ).fetchall()
            block = VectorBlock(self.dims, capacity=max(64, len(rows)))
            self._add_rows(block, rows)
            self._blocks[ns] = block
        return block

    def _add_rows(self, block: VectorBlock, rows: list[tuple[int, bytes]]) -> None:
        """Add ``(item_id, vec)`` rows read from the vectors table to a cached block."""
        if rows:
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            block.add(ids, mat.reshape(len(rows), self.dims))

    def _keyword_hits(self, prefix: tuple[str, ...], query: str) -> dict[int, float]:
        terms = q.keyword_terms(query)
        if terms:
            marks = ",".join("?" * len(terms))
            counts = dict(
                self._conn.execute(
                    f"SELECT term, doc FROM items_fts_terms WHERE term IN ({marks})", terms
                ).fetchall()
            )
            terms = [t for t in terms if 0 < counts.get(t, 0) <= KEYWORD_MAX_DOCS]
        if not terms:
            return {}
        text = "text : (" + " OR ".join(f'"{t}"' for t in terms) + ")"
        match = f'tags : "{q.prefix_tag(prefix)}" AND {text}' if prefix else text
        rows = self._conn.execute(
            "SELECT rowid, -bm25(items_fts, 1.0, 0.0) AS s FROM items_fts "
            "WHERE items_fts MATCH ? ORDER BY s DESC LIMIT ?",
            (match, _KEYWORD_HITS),
        ).fetchall()
        if not rows:
            return {}
        best = max(r[1] for r in rows) or 1.0
        return {int(r[0]): float(r[1]) / best for r in rows}

    def _ranked(
        self, op: SearchOp, query_vec: np.ndarray | None
    ) -> Iterator[list[tuple[int, float]]]:
        """Chunks of (item id, score), best first: dense and keyword scores fused.

        Big namespaces go through their approximate index (see ``vectors.rank_blocks``)."""
        prefix = tuple(op.namespace_prefix)
        keyword = self._keyword_hits(prefix, op.query or "") if self.keyword_weight > 0 else {}
        if query_vec is None:
            yield from best_first_chunks(keyword, _SQL_CHUNK)
            return
        blocks = [self._block(ns) for ns in self._namespaces_under(prefix)]
        want = max(2 * (op.offset + op.limit), 32)
        yield from rank_blocks(blocks, query_vec, keyword, self.keyword_weight, self.ann, want)

    def _search(
        self, op: SearchOp, query_vec: np.ndarray | None, now: float, refresh: set[int]
    ) -> list[SearchItem]:
        page = search_page(
            op,
            (lambda: self._ranked(op, query_vec)) if self._scored(op, query_vec) else None,
            lambda ids: self._fetch(op, ids, now),
            lambda want, skip: self._scan(op, now, want, skip),
        )
        if self._refreshes(op.refresh_ttl):
            refresh.update(row[0] for row, _ in page if row[6] is not None)
        return [_item(row, score, search=True) for row, score in page]  # type: ignore[misc]

    def _fetch(self, op: SearchOp, ids: list[int], now: float) -> dict[int, tuple[Any, ...]]:
        out: dict[int, tuple[Any, ...]] = {}
        matches, args = _filter_sql(op)
        for start in range(0, len(ids), _SQL_CHUNK):
            part = ids[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT {_ROW}, ttl_minutes FROM items WHERE id IN ({marks}) AND {_LIVE}"
                f" AND {matches}",
                (*part, now, *args),
            ):
                if not op.filter or q.matches_filter(json.loads(row[3]), op.filter):
                    out[row[0]] = row
        return out

    def _scan(
        self, op: SearchOp, now: float, want: int, skip: set[int]
    ) -> Iterator[tuple[Any, ...]]:
        """Items under the prefix in recency order, filtered: listings, and scoreless tails."""
        prefix = tuple(op.namespace_prefix)
        where = _LIVE
        args: list[Any] = [now]
        held = self._held_under(prefix) if prefix else None
        if held is not None and held[0] <= 1:
            where += " AND ns = ?"  # one namespace: its index yields recency order, no sort
            args.append(q.encode_ns(prefix))
        elif held is not None:
            exact, low, high = q.ns_range(prefix)
            # A prefix holding a large share of all items reads faster by one pass over
            # the table than by an index lookup per item ('+' keeps SQLite off the index).
            plus = "+" if held[1] * _BROAD > self._item_count_estimate() else ""
            where += f" AND ({plus}ns = ? OR ({plus}ns >= ? AND {plus}ns < ?))"
            args += [exact, low, high]
        if op.query:
            where += " AND id NOT IN (SELECT item_id FROM vectors)" if self.embeddings else ""
        matches, filter_args = _filter_sql(op)
        where += f" AND {matches}"
        args += filter_args
        sql = (
            f"SELECT {_ROW}, ttl_minutes FROM items WHERE {where} "
            "ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
        )

        def accept(row: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if row[0] in skip or (
                op.filter and not q.matches_filter(json.loads(row[3]), op.filter)
            ):
                return None
            return row

        return scan_pages(
            lambda offset, page: self._conn.execute(sql, (*args, page, offset)).fetchall(),
            accept,
            want,
            bool(op.filter),
        )

    def _held_under(self, prefix: tuple[str, ...]) -> tuple[int, int]:
        """(namespaces, items) at or under ``prefix``, expired items included."""
        key = q.order_key(prefix)
        found = self._conn.execute(
            "SELECT count(*), coalesce(sum(items), 0) FROM namespaces WHERE key >= ? AND key < ?",
            (key, key + b"\x01"),
        ).fetchone()
        return int(found[0]), int(found[1])

    def _item_count_estimate(self) -> int:
        """At least the number of items, read in O(1): the largest item id."""
        return int(self._conn.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0])

    def _list_namespaces(self, op: ListNamespacesOp, now: float) -> list[tuple[str, ...]]:
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
            found = self._walk_namespaces(conditions, None, None, now)
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
            and not self._dead_namespaces(now)
            and (depth or 0) >= self._deepest(where, args, depth)
        ):
            rows = self._conn.execute(
                f"SELECT ns FROM namespaces WHERE {where} ORDER BY key LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
            return [q.decode_ns(r[0]) for r in rows]
        return self._walk_namespaces(conditions, depth, offset + limit, now)[offset:]

    def _deepest(self, where: str, args: list[Any], max_depth: int | None) -> int:
        """Depth of the deepest namespace the WHERE keeps (0 when ``max_depth`` is None:
        nothing is truncated then, so nothing needs reading)."""
        if max_depth is None:
            return 0
        sql = f"SELECT coalesce(max(depth), 0) FROM namespaces WHERE {where}"
        return int(self._conn.execute(sql, args).fetchone()[0])

    def _dead_namespaces(self, now: float) -> set[str]:
        """Namespaces whose every item has expired (not yet swept): usually none, found
        through the expiry index without touching live items."""
        return {
            r[0]
            for r in self._conn.execute(
                "SELECT DISTINCT ns FROM items AS e WHERE expires_at IS NOT NULL "
                "AND expires_at <= ? AND NOT EXISTS (SELECT 1 FROM items "
                f"WHERE items.ns = e.ns AND {_LIVE})",
                (now, now),
            )
        }

    def _walk_namespaces(
        self,
        conditions: tuple[MatchCondition, ...],
        max_depth: int | None,
        want: int | None,
        now: float,
    ) -> list[tuple[str, ...]]:
        """Matching live namespaces (truncated to ``max_depth``) in order, up to ``want``."""
        where, args = _ns_where(conditions)
        dead = self._dead_namespaces(now)
        sql = f"SELECT key, ns FROM namespaces WHERE {where} ORDER BY key LIMIT ?"
        full = _NS_PAGE if want is None else min(max(2 * want, 64), _NS_PAGE)
        page = full if max_depth is None else min(full, 64)
        found: list[tuple[str, ...]] = []
        cursor: bytes = args[0]
        while True:
            rows = self._conn.execute(sql, (cursor, *args[1:], page)).fetchall()
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

    # ----------------------------------------------------------------- writes
    def _write(self, plan: Plan, vectors: np.ndarray | None, refresh: set[int], now: float) -> None:
        rows_of = plan.rows_of()
        changed: list[tuple[str, int, np.ndarray | None, np.ndarray | None]] = []
        vector_rows: list[tuple[int, str, str, bytes]] = []
        keyword_rows: list[tuple[int, str, str]] = []
        with self._tx() as conn:
            self._flush_refreshes(conn)
            if refresh:
                ids = list(refresh)
                for start in range(0, len(ids), _SQL_CHUNK):
                    part = ids[start : start + _SQL_CHUNK]
                    conn.execute(
                        "UPDATE items SET expires_at = ? + ttl_minutes * 60.0 WHERE "
                        f"ttl_minutes IS NOT NULL AND id IN ({','.join('?' * len(part))})",
                        (now, *part),
                    )
            newest = conn.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]
            for target, op in plan.puts.items():
                ns, blob = q.encode_ns(op.namespace), plan.blobs[target]
                if blob is None:
                    gone = conn.execute(
                        "DELETE FROM items WHERE ns = ? AND key = ? RETURNING id", (ns, op.key)
                    ).fetchone()
                    if gone:
                        changed.append((ns, gone[0], None, None))
                    continue
                item_id = self._upsert(conn, op, ns, blob, now, newest)
                rows = rows_of.get((op.namespace, op.key), [])
                texts = [plan.texts[r] for r in rows] if rows else []
                mat = vectors[rows] if vectors is not None and rows else None
                if mat is not None:
                    vector_rows.extend(
                        (item_id, plan.owners[r][1], ns, v.tobytes())
                        for r, v in zip(rows, mat, strict=True)
                    )
                if texts:
                    keyword_rows.append(
                        (item_id, "\n".join(texts), " ".join(q.ns_tags(op.namespace)))
                    )
                changed.append((ns, item_id, np.full(len(rows), item_id, np.int64), mat))
            conn.executemany(
                "INSERT INTO vectors(item_id, path, ns, vec) VALUES (?, ?, ?, ?)", vector_rows
            )
            conn.executemany(
                "INSERT INTO items_fts(rowid, text, tags) VALUES (?, ?, ?)", keyword_rows
            )
            conn.execute(
                "DELETE FROM vector_changes WHERE seq <= (SELECT max(seq) FROM vector_changes) - ?",
                (CHANGES_KEPT,),
            )
        # Our own commits leave data_version unchanged, so _data_version is not re-read
        # here: a foreign commit that landed since the last sync must still be noticed.
        for ns, item_id, owner_ids, mat in changed:
            block = self._blocks.get(ns)
            if block is not None:
                block.remove(item_id)
                if owner_ids is not None and mat is not None:
                    block.add(owner_ids, mat)

    def _upsert(
        self, conn: sqlite3.Connection, op: PutOp, ns: str, blob: str, now: float, newest: int
    ) -> int:
        """Insert or replace one item; ``newest`` is the largest id before this batch."""
        ttl = op.ttl
        expires = now + ttl * 60.0 if ttl is not None else None
        spec = None if op.index is None else json.dumps(op.index)
        row = conn.execute(
            "INSERT INTO items(ns, key, value, created_at, updated_at, expires_at, ttl_minutes, "
            "index_spec) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at, "
            "created_at = CASE WHEN items.expires_at IS NOT NULL AND items.expires_at <= "
            "excluded.updated_at THEN excluded.created_at ELSE items.created_at END, "
            "expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes, "
            "index_spec = excluded.index_spec RETURNING id",
            (ns, op.key, blob, now, now, expires, ttl, spec),
        ).fetchone()
        item_id = int(row[0])
        if item_id <= newest:  # an existing row: drop its old vectors and keywords
            conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))
            conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
        return item_id

    # ----------------------------------------------------------------- TTL
    def _schedule_refreshes(self, ids: set[int], now: float) -> set[int]:
        """Sort read items into nothing to do, refresh later, refresh now (returned)."""
        inline: set[int] = set()
        found = list(ids)
        for start in range(0, len(found), _SQL_CHUNK):
            part = found[start : start + _SQL_CHUNK]
            for item_id, ttl, expires in self._conn.execute(
                "SELECT id, ttl_minutes, expires_at FROM items WHERE id IN "
                f"({','.join('?' * len(part))}) AND ttl_minutes IS NOT NULL",
                part,
            ):
                seconds = ttl * 60.0
                if expires is None or now + seconds - expires <= min(
                    seconds * REFRESH_SLACK, REFRESH_SLACK_MAX_S
                ):
                    continue
                if expires - now < REFRESH_INLINE_BELOW_S:
                    inline.add(item_id)
                else:
                    self._pending_refresh[item_id] = now
        if self._pending_refresh:
            self._start_maintenance()
        return inline

    def _flush_refreshes(self, conn: sqlite3.Connection) -> None:
        """Write queued refreshes inside the caller's write transaction.

        A refresh only ever pushes an expiry later, and never revives an item that
        expired (or was rewritten by a later put) since it was read."""
        if not self._pending_refresh:
            return
        now = time.time()
        conn.executemany(
            "UPDATE items SET expires_at = ? + ttl_minutes * 60.0 WHERE id = ? "
            "AND ttl_minutes IS NOT NULL AND expires_at > ? "
            "AND expires_at < ? + ttl_minutes * 60.0",
            [(read, item_id, now, read) for item_id, read in self._pending_refresh.items()],
        )
        self._pending_refresh.clear()

    def flush_refreshes(self) -> None:
        """Write queued refresh-on-read expiries now (the maintenance thread does this
        within a second; call it before copying the file)."""
        with self._lock:
            self._check_open()
            if self._pending_refresh:
                with self._tx() as conn:
                    self._flush_refreshes(conn)

    def sweep_ttl(self) -> int:
        """Delete expired items, with their vectors and keyword entries; returns how many."""
        with self._lock:
            self._check_open()
            self._sync_with_other_writers()
            with self._tx() as conn:
                self._flush_refreshes(conn)
                gone = conn.execute(
                    "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ? "
                    "RETURNING id, ns",
                    (time.time(),),
                ).fetchall()
            for item_id, ns in gone:
                block = self._blocks.get(ns)
                if block is not None:
                    block.remove(item_id)
            return len(gone)

    def _sweep_interval_s(self) -> float | None:
        minutes = (self.ttl_config or {}).get("sweep_interval_minutes")
        return float(minutes) * 60.0 if minutes else None

    def _start_maintenance(self) -> None:
        """One daemon thread per store writes queued refreshes and sweeps expired items,
        so no user request pays for either (like LangGraph's ``start_ttl_sweeper``)."""
        if self._maintainer is not None or self._stop.is_set():
            return
        self._maintainer = threading.Thread(
            target=_maintain,
            args=(weakref.ref(self), self._stop, self._sweep_interval_s()),
            name=f"memshelf-sqlite-ttl:{Path(self.path).name}",
            daemon=True,
        )
        self._maintainer.start()

    def scrub(self) -> None:
        """Rewrite the keyword index without deleted entries and empty the WAL, so deleted
        text survives in no page of the database files (``secure_delete`` zeroes freed
        pages)."""
        with self._lock:
            with self._tx() as conn:
                conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ----------------------------------------------------------------- maintenance
    def stats(self) -> dict[str, Any]:
        """Counts for `memshelf doctor`: items, vectors, namespaces, file size, embedder."""
        with self._lock:
            conn = self._conn
            size = Path(self.path).stat().st_size if self.path != ":memory:" else 0
            return {
                "path": self.path,
                "items": conn.execute("SELECT count(*) FROM items").fetchone()[0],
                "vectors": conn.execute("SELECT count(*) FROM vectors").fetchone()[0],
                "namespaces": conn.execute("SELECT count(DISTINCT ns) FROM items").fetchone()[0],
                "file_bytes": size,
                "embedder": self.meta("embedder"),
                "schema": conn.execute("PRAGMA user_version").fetchone()[0],
            }

    def reembed(self, batch_size: int = 256) -> int:
        """Re-embed every indexed item with the configured embedder; returns how many.

        Vectors are computed outside the lock from a snapshot, then swapped in one
        transaction, so an error part-way leaves every old vector in place. An item
        written or deleted while the embedder ran is left as that write left it: its
        own put already stored vectors from this store's (new) embedder.
        """
        if self.embeddings is None:
            raise MemshelfError("reembed needs a store opened with an index (an embedder).")
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT id, ns, value, index_spec, updated_at FROM items"
            ).fetchall()
        owners: list[tuple[int, str, str]] = []
        texts: list[str] = []
        for item_id, ns, value, spec, _ in rows:
            index = None if spec is None else json.loads(spec)
            for path, text in q.texts_to_index(json.loads(value), index, self._fields):
                owners.append((item_id, ns, path))
                texts.append(text)
        mat = self._embed_all(texts, batch_size)
        seen = {r[0]: (r[2], r[4]) for r in rows}
        with self._lock, self._tx() as conn:
            unchanged: set[int] = set()
            ids = list(seen)
            for start in range(0, len(ids), _SQL_CHUNK):
                part = ids[start : start + _SQL_CHUNK]
                marks = ",".join("?" * len(part))
                for item_id, value, updated in conn.execute(
                    f"SELECT id, value, updated_at FROM items WHERE id IN ({marks})", part
                ):
                    if seen[item_id] == (value, updated):
                        unchanged.add(item_id)
            conn.executemany("DELETE FROM vectors WHERE item_id = ?", [(i,) for i in unchanged])
            conn.executemany(
                "INSERT INTO vectors(item_id, path, ns, vec) VALUES (?, ?, ?, ?)",
                [
                    (i, p, ns, v.tobytes())
                    for (i, ns, p), v in zip(owners, mat, strict=True)
                    if i in unchanged
                ],
            )
            self._set_meta("embedder", self.embedder_id or "")
            self._blocks.clear()
        return len({o[0] for o in owners if o[0] in unchanged})


def _maintain(ref: weakref.ref[SqliteStore], stop: threading.Event, sweep_s: float | None) -> None:
    """The maintenance loop; holds only a weak reference, so a dropped store goes away."""
    next_sweep = time.monotonic() + sweep_s if sweep_s else None
    while not stop.wait(min(REFRESH_FLUSH_S, sweep_s or REFRESH_FLUSH_S)):
        store = ref()
        if store is None:
            return
        try:
            if store._pending_refresh:
                store.flush_refreshes()
            if next_sweep is not None and time.monotonic() >= next_sweep:
                store.sweep_ttl()
                next_sweep = time.monotonic() + (sweep_s or 0.0)
        except StoreError:
            return  # closed under us
        except sqlite3.Error as exc:  # a busy or broken file: try again next round
            log.warning("memshelf store maintenance failed (%s); retrying", type(exc).__name__)
        finally:
            del store
