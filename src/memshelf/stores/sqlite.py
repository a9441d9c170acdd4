"""memshelf's embedded store: a LangGraph ``BaseStore`` in one SQLite file.

Items, their vectors and a keyword index live in one WAL-mode database, so a
put is atomic and durable across restarts. Vector search needs no SQLite
extension (this Python's ``sqlite3`` cannot load any): each namespace's
vectors are cached in process as one float32 matrix (see ``vectors.py``) and
searched exactly; ``PRAGMA data_version`` tells us when another process wrote,
so every process sees every commit. Keyword search is SQLite FTS5, scoped to a
namespace by opaque per-prefix tokens, and fused with the cosine score.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langgraph.store.base import (
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)

from memshelf.errors import EmbedderMismatchError, MemshelfError, StoreError
from memshelf.stores import _query as q
from memshelf.stores.base import (
    DEFAULT_MAX_VALUE_BYTES,
    MemshelfStore,
    Plan,
    best_first_chunks,
    make_item,
    scan_pages,
    search_page,
)
from memshelf.stores.vectors import VectorBlock, best_per_item

SCHEMA_VERSION = 2
_SQL_CHUNK = 500
_KEYWORD_HITS = 200
# A word in more documents than this says little about which one is meant, and
# scoring its matches is what makes keyword search slow in a big store.
KEYWORD_MAX_DOCS = 2000

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
}

_ROW = "id, ns, key, value, created_at, updated_at"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


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
        self._data_version = -1
        self._last_sweep = time.time()
        self._setup(verify_embedder)

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
        with self._lock:  # waits for a running batch
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
            if plan.puts or refresh:
                self._write(plan, vectors, refresh, now)
            self._maybe_sweep(now)
            return results

    def _sync_with_other_writers(self) -> None:
        """Drop cached vectors when another connection has committed since we last looked."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            if self._data_version != -1:
                self._blocks.clear()
            self._data_version = version

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
        if not prefix:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT ns FROM items")]
        exact, low, high = q.ns_range(prefix)
        found = [exact]
        nested = "SELECT DISTINCT ns FROM items WHERE ns >= ? AND ns < ?"
        if self._conn.execute(nested + " LIMIT 1", (low, high)).fetchone():
            found += [r[0] for r in self._conn.execute(nested, (low, high))]
        return found

    def _block(self, ns: str) -> VectorBlock:
        block = self._blocks.get(ns)
        if block is None:
            rows = self._conn.execute(
                "SELECT item_id, vec FROM vectors WHERE ns = ?", (ns,)
            ).fetchall()
            block = VectorBlock(self.dims, capacity=max(64, len(rows)))
            if rows:
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                block.add(ids, mat.reshape(len(rows), self.dims))
            self._blocks[ns] = block
        return block

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
        """Chunks of (item id, score), best first: dense and keyword scores fused."""
        prefix = tuple(op.namespace_prefix)
        keyword = self._keyword_hits(prefix, op.query or "") if self.keyword_weight > 0 else {}
        if query_vec is None:
            yield from best_first_chunks(keyword, _SQL_CHUNK)
            return
        parts = [self._block(ns).scores(query_vec) for ns in self._namespaces_under(prefix)]
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        dense = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
        scores = dense
        if keyword:
            bonus = np.zeros(len(ids), dtype=np.float32)
            kw_ids = np.fromiter(keyword, dtype=np.int64, count=len(keyword))
            kw_val = np.fromiter(keyword.values(), dtype=np.float32, count=len(keyword))
            order = np.argsort(kw_ids)
            kw_ids, kw_val = kw_ids[order], kw_val[order]
            pos = np.clip(np.searchsorted(kw_ids, ids), 0, len(kw_ids) - 1)
            hit = kw_ids[pos] == ids
            bonus[hit] = kw_val[pos[hit]]
            w = self.keyword_weight
            scores = (1.0 - w) * dense + w * bonus
        want = max(2 * (op.offset + op.limit), 32)
        done = 0
        while True:
            best = best_per_item(ids, scores, want)
            if len(best) > done:
                yield best[done:]
                done = len(best)
            if len(best) < want:
                return
            want *= 4

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
        for start in range(0, len(ids), _SQL_CHUNK):
            part = ids[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT {_ROW}, ttl_minutes FROM items WHERE id IN ({marks}) AND {_LIVE}",
                (*part, now),
            ):
                if not op.filter or q.matches_filter(json.loads(row[3]), op.filter):
                    out[row[0]] = row
        return out

    def _scan(
        self, op: SearchOp, now: float, want: int, skip: set[int]
    ) -> Iterator[tuple[Any, ...]]:
        """Items under the prefix in recency order, filtered: listings, and scoreless tails."""
        prefix = tuple(op.namespace_prefix)
        where, args = f"{_LIVE}", [now]
        if prefix:
            exact, low, high = q.ns_range(prefix)
            where += " AND (ns = ? OR (ns >= ? AND ns < ?))"
            args += [exact, low, high]  # type: ignore[list-item]
        if op.query:
            where += " AND id NOT IN (SELECT item_id FROM vectors)" if self.embeddings else ""
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

    def _list_namespaces(self, op: ListNamespacesOp, now: float) -> list[tuple[str, ...]]:
        rows = self._conn.execute(f"SELECT DISTINCT ns FROM items WHERE {_LIVE}", (now,))
        namespaces = (q.decode_ns(r[0]) for r in rows)
        return q.list_namespaces(namespaces, op.match_conditions, op.max_depth, op.limit, op.offset)

    # ----------------------------------------------------------------- writes
    def _write(self, plan: Plan, vectors: np.ndarray | None, refresh: set[int], now: float) -> None:
        rows_of = plan.rows_of()
        changed: list[tuple[str, int, np.ndarray | None, np.ndarray | None]] = []
        vector_rows: list[tuple[int, str, str, bytes]] = []
        keyword_rows: list[tuple[int, str, str]] = []
        with self._tx() as conn:
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
        self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
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
    def sweep_ttl(self) -> int:
        """Delete expired items, with their vectors and keyword entries; returns how many."""
        with self._lock:
            self._sync_with_other_writers()
            with self._tx() as conn:
                gone = conn.execute(
                    "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ? "
                    "RETURNING id, ns",
                    (time.time(),),
                ).fetchall()
            self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            for item_id, ns in gone:
                block = self._blocks.get(ns)
                if block is not None:
                    block.remove(item_id)
            self._last_sweep = time.time()
            return len(gone)

    def scrub(self) -> None:
        """Rewrite the keyword index without deleted entries and empty the WAL, so deleted
        text survives in no page of the database files (``secure_delete`` zeroes freed
        pages)."""
        with self._lock:
            with self._tx() as conn:
                conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _maybe_sweep(self, now: float) -> None:
        interval = (self.ttl_config or {}).get("sweep_interval_minutes")
        if interval and now - self._last_sweep >= interval * 60.0:
            self.sweep_ttl()

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
        """Re-embed every indexed item with the configured embedder, atomically.

        All new vectors are computed before the database changes; the swap is one
        transaction, so an error part-way leaves every old vector in place.
        """
        if self.embeddings is None:
            raise MemshelfError("reembed needs a store opened with an index (an embedder).")
        with self._lock:
            rows = self._conn.execute("SELECT id, ns, value, index_spec FROM items").fetchall()
        owners: list[tuple[int, str, str]] = []
        texts: list[str] = []
        for item_id, ns, value, spec in rows:
            index = None if spec is None else json.loads(spec)
            for path, text in q.texts_to_index(json.loads(value), index, self._fields):
                owners.append((item_id, ns, path))
                texts.append(text)
        mat = self._embed_all(texts, batch_size)
        with self._lock, self._tx() as conn:
            conn.execute("DELETE FROM vectors")
            conn.executemany(
                "INSERT INTO vectors(item_id, path, ns, vec) VALUES (?, ?, ?, ?)",
                [(i, p, ns, v.tobytes()) for (i, ns, p), v in zip(owners, mat, strict=True)],
            )
            self._set_meta("embedder", self.embedder_id or "")
        with self._lock:
            self._blocks.clear()
        return len({o[0] for o in owners})
