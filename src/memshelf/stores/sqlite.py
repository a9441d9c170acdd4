"""memshelf's embedded store: a LangGraph ``BaseStore`` in one SQLite file.

Items, their vectors and a keyword index live in one WAL-mode database, so a
put is atomic and durable across restarts. Vector search needs no SQLite
extension (this Python's ``sqlite3`` cannot load any): each namespace's
vectors are cached in process (see ``vectors.py``; the cache is bounded by
bytes, ``_sqlite_blocks.py``), searched exactly when small and through an
HNSW index (``ann.py``) past ``AnnConfig.min_rows``.
``PRAGMA data_version`` tells us when another process wrote, and the
``vector_changes`` log which items it touched, so every process sees every
commit without reloading. Keyword search is SQLite FTS5 with bm25, each
namespace's rows one rowid range (``_sqlite_keyword.py``), fused with the cosine
score. Filters and namespace listings run in SQL (``_sqlfilter.py``,
``_sqlite_namespaces.py``), re-checked in Python. TTL refreshes are queued and
written, and expired items swept, by one maintenance thread per store on its
own connection, never inside a read (``_sqlite_ttl.py``). The schema and its migrations are in
``_sqlite_schema.py``.
"""

from __future__ import annotations

import contextlib
import functools
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
from memshelf.stores import _sqlite_namespaces as _namespaces
from memshelf.stores._sqlfilter import filter_condition
from memshelf.stores._sqlite_blocks import DEFAULT_VECTOR_CACHE_BYTES, BlockCache
from memshelf.stores._sqlite_keyword import keyword_hits
from memshelf.stores._sqlite_schema import _MIGRATIONS as _MIGRATIONS  # (old-file tests)
from memshelf.stores._sqlite_schema import (
    ITEM_BITS,
    ITEM_MASK,
    LIVE,
    file_errors,
    fts_rowid_sql,
    migrate,
    refuse_foreign,
)
from memshelf.stores._sqlite_schema import SCHEMA_VERSION as SCHEMA_VERSION
from memshelf.stores._sqlite_ttl import Maintenance, side_connection, sweep, write_tx
from memshelf.stores.ann import AnnConfig
from memshelf.stores.base import (
    DEFAULT_MAX_VALUE_BYTES,
    MemshelfStore,
    Plan,
    QueryVectors,
    best_first_chunks,
    make_item,
    scan_pages,
    search_page,
)
from memshelf.stores.vectors import VectorBlock, rank_blocks

_SQL_CHUNK = 500
# The change log keeps this many entries; a process further behind reloads everything,
# as it also does when catching up would touch more items than a reload reads.
CHANGES_KEPT = 20_000
CHANGES_CATCH_UP = 2_000

# How long a write waits for another process's write lock; a read's urgent TTL refresh
# waits less, then is queued (the maintenance thread writes it within a second or two).
_BUSY_MS = 10_000
_READ_REFRESH_BUSY_MS = 200
_ROW = "id, ns, key, value, created_at, updated_at"
# A prefix holding more than 1/_BROAD of all items is scanned without the ns index.
_BROAD = 5
_DELETE_KEYWORDS = f"DELETE FROM items_fts WHERE rowid = {fts_rowid_sql('?', '?')}"


def _filter_sql(op: SearchOp) -> tuple[str, tuple[Any, ...]]:
    """The search's filter as a SQL prefilter; unknown operators fail here, item or not."""
    q.check_filter(op.filter)
    return filter_condition(op.filter)


def _storable(op: Op) -> bool:
    """Whether a read names only text a put can store (UTF-8: no lone surrogates)."""
    if isinstance(op, GetOp):
        labels = [*op.namespace, op.key]
    elif isinstance(op, SearchOp):
        labels = list(op.namespace_prefix)
    elif isinstance(op, ListNamespacesOp):
        labels = [label for c in op.match_conditions or () for label in c.path]
    else:
        return True
    try:
        "".join(labels).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        vector_cache_bytes: int = DEFAULT_VECTOR_CACHE_BYTES,
    ) -> None:
        super().__init__(
            index=index,
            ttl=ttl,
            max_value_bytes=max_value_bytes,
            keyword_weight=keyword_weight,
            embedder_id=embedder_id,
        )
        self._blocks = BlockCache(vector_cache_bytes)  # namespaces' vectors, read on demand
        self.path = str(path)
        with file_errors(self.path):  # a path that cannot hold a store: one clear error
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self.ann = ann or AnnConfig()  # when a namespace's vectors get an approximate index
        self._data_version = -1
        self._change_seq = 0  # the last vector_changes entry applied to the cached blocks
        private = self.path in (":memory:", "")  # no second connection sees the same data
        side = None if private else functools.partial(side_connection, self.path)
        self._ttl = Maintenance(Path(self.path).name, self._sweep_interval_s(), side)
        try:
            with file_errors(self.path):
                self._setup(verify_embedder)
        except BaseException:
            self._conn.close()  # a refused file (newer schema, other embedder) is let go
            raise
        if self._ttl.sweep_s is not None:
            self._ttl.start(self)

    # ----------------------------------------------------------------- lifecycle
    def _setup(self, verify_embedder: bool) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        if self.path != ":memory:":
            refuse_foreign(conn, self.path)  # before WAL, which would change the file
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed: forget means gone
        with self._lock, self._tx():
            migrate(conn, self.path)
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
        self._ttl.stop()
        with self._lock:  # waits for a running batch
            try:
                if self._ttl.pending:
                    with self._tx():  # writes the queued refreshes
                        pass
            finally:
                self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, embedder={self.embedder_id!r})"

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction on the store's connection, queued refreshes included."""
        return write_tx(self._conn, self._ttl)

    # ----------------------------------------------------------------- batching
    def _execute(
        self,
        ops: list[Op],
        plan: Plan,
        vectors: np.ndarray | None,
        queries: dict[str, np.ndarray],
    ) -> list[Result]:
        with self._lock, file_errors(self.path):
            self._check_open()
            self._sync_with_other_writers()
            now = time.time()
            results: list[Result] = []
            refresh: set[int] = set()
            for op in ops:
                if not _storable(op):  # text no put can store: nothing to find
                    results.append(None if isinstance(op, GetOp) else [])
                elif isinstance(op, GetOp):
                    results.append(self._get(op, now, refresh))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op, queries, now, refresh))
                elif isinstance(op, ListNamespacesOp):
                    results.append(_namespaces.list_namespaces(self._conn, op, now))
                else:
                    results.append(None)
            inline = self._schedule_refreshes(refresh, now) if refresh else set()
            if plan.puts:
                self._write(plan, vectors, inline, now)
            elif inline:
                self._refresh_now(plan, inline, now)
            return results

    def _refresh_now(self, plan: Plan, inline: set[int], now: float) -> None:
        """Write a read's urgent refreshes; if another process holds the write lock, queue
        them for the maintenance thread instead: the read has its answer, and must not
        wait out (or fail on) someone else's long write."""
        self._conn.execute(f"PRAGMA busy_timeout = {_READ_REFRESH_BUSY_MS}")
        try:
            self._write(plan, None, inline, now)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            self._ttl.requeue(dict.fromkeys(inline, now))
            self._ttl.start(self)
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")

    def _sync_with_other_writers(self) -> None:
        """Bring cached vectors up to date when another connection has committed.

        ``data_version`` changes only for other connections' commits, so our own
        writes never hide theirs. The change log names the items whose vectors moved;
        only those are reloaded, unless the cache is too far behind. The versions seen
        are recorded only once the cache has caught up: a read that fails part-way
        tries again next time, and drops the blocks it may have left half-patched."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        last = self._change_seq
        newest = self._conn.execute("SELECT coalesce(max(seq), 0) FROM vector_changes").fetchone()[
            0
        ]
        if self._blocks and newest != last:
            oldest = self._conn.execute("SELECT min(seq) FROM vector_changes").fetchone()[0]
            if oldest is None or oldest > last + 1 or newest - last > CHANGES_CATCH_UP:
                self._blocks.clear()
            else:
                self._catch_up(last, newest)
        self._data_version, self._change_seq = version, newest

    def _catch_up(self, last: int, newest: int) -> None:
        """Reload the cached vectors of items the change log lists after ``last``."""
        touched: dict[str, set[int]] = {}
        for ns, item_id in self._conn.execute(
            "SELECT ns, item_id FROM vector_changes WHERE seq > ? AND seq <= ?", (last, newest)
        ):
            if ns in self._blocks:
                touched.setdefault(ns, set()).add(item_id)
        try:
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
        except BaseException:
            for ns in touched:
                self._blocks.pop(ns)  # read again, whole, when next searched
            raise
        for ns in touched:
            self._blocks.changed(ns)

    # ----------------------------------------------------------------- reads
    def _get(self, op: GetOp, now: float, refresh: set[int]) -> Item | None:
        row = self._conn.execute(
            f"SELECT {_ROW}, ttl_minutes FROM items WHERE ns = ? AND key = ? AND {LIVE}",
            (q.encode_ns(op.namespace), op.key, now),
        ).fetchone()
        if row is None:
            return None
        if row[6] is not None and self._refreshes(op.refresh_ttl):
            refresh.add(row[0])
        return _item(row)

    def _namespaces_under(self, prefix: tuple[str, ...]) -> list[str]:
        """Encoded namespaces holding items (expired or not) at or under ``prefix``."""
        return [ns for ns, _ in _namespaces.under(self._conn, prefix)]

    def _block(self, ns: str) -> VectorBlock:
        block = self._blocks.use(ns)
        if block is None:
            rows = self._conn.execute(
                "SELECT item_id, vec FROM vectors WHERE ns = ?", (ns,)
            ).fetchall()
            block = VectorBlock(self.dims, capacity=len(rows))
            self._add_rows(block, rows)
            self._blocks.add(ns, block)
        return block

    def _add_rows(self, block: VectorBlock, rows: list[tuple[int, bytes]]) -> None:
        """Add ``(item_id, vec)`` rows read from the vectors table to a cached block."""
        if rows:
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            block.add(ids, mat.reshape(len(rows), self.dims))

    def _ranked(
        self, op: SearchOp, queries: dict[str, np.ndarray]
    ) -> Iterator[list[tuple[int, float]]]:
        """Chunks of (item id, score), best first: dense and keyword scores fused.

        Big namespaces go through their approximate index (see ``vectors.rank_blocks``)."""
        prefix = tuple(op.namespace_prefix)
        held = _namespaces.under(self._conn, prefix)
        keyword: dict[int, float] = {}
        if self.keyword_weight > 0:
            ids = [ns_id for _, ns_id in held] if prefix else None
            keyword = keyword_hits(self._conn, op.query or "", ids, prefix)
        query_vec = self._await_vector(queries, op.query or "")
        if query_vec is None:
            yield from best_first_chunks(keyword, _SQL_CHUNK)
            return
        blocks = [self._block(ns) for ns, _ in held]
        want = max(2 * (op.offset + op.limit), 32)
        yield from rank_blocks(blocks, query_vec, keyword, self.keyword_weight, self.ann, want)

    def _await_vector(self, queries: dict[str, np.ndarray], text: str) -> np.ndarray | None:
        """The query's vector, which may still be embedding (see ``QueryVectors``).

        Waiting for the embedder must not stall this store's other readers, so the
        lock is let go meanwhile (a read is autocommit: nothing is half done), and
        the dense phase then sees whatever was committed in between."""
        if isinstance(queries, QueryVectors) and not queries.ready:
            self._lock.release()  # held once, by _execute
            try:
                queries.wait()
            finally:
                self._lock.acquire()
            self._check_open()
            self._sync_with_other_writers()
        return queries.get(text)

    def _search(
        self, op: SearchOp, queries: dict[str, np.ndarray], now: float, refresh: set[int]
    ) -> list[SearchItem]:
        page = search_page(
            op,
            (lambda: self._ranked(op, queries)) if self._scored(op) else None,
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
                f"SELECT {_ROW}, ttl_minutes FROM items WHERE id IN ({marks}) AND {LIVE}"
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
        where = LIVE
        args: list[Any] = [now]
        held = _namespaces.held_under(self._conn, prefix) if prefix else None
        if held is not None and held[0] <= 1:
            where += " AND ns = ?"  # one namespace: its index yields recency order, no sort
            only = _namespaces.under(self._conn, prefix) if held[0] else []
            args.append(only[0][0] if only else q.encode_ns(prefix))  # it may lie below
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

    def _item_count_estimate(self) -> int:
        """At least the number of items, read in O(1): the largest item id."""
        return int(self._conn.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0])

    # ----------------------------------------------------------------- writes
    def _write(self, plan: Plan, vectors: np.ndarray | None, refresh: set[int], now: float) -> None:
        rows_of = plan.rows_of()
        changed: list[tuple[str, int, np.ndarray | None, np.ndarray | None]] = []
        vector_rows: list[tuple[int, str, str, bytes]] = []
        keyword_rows: list[tuple[bytes, int, str, str]] = []
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
                    tags = " ".join(q.ns_tags(op.namespace))
                    keyword_rows.append(
                        (q.order_key(op.namespace), item_id, "\n".join(texts), tags)
                    )
                changed.append((ns, item_id, np.full(len(rows), item_id, np.int64), mat))
            conn.executemany(
                "INSERT INTO vectors(item_id, path, ns, vec) VALUES (?, ?, ?, ?)", vector_rows
            )
            self._insert_keywords(conn, keyword_rows)
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
        for ns in {c[0] for c in changed}:
            self._blocks.changed(ns)

    @staticmethod
    def _insert_keywords(conn: sqlite3.Connection, rows: list[tuple[bytes, int, str, str]]) -> None:
        """Add (namespace key, item id, text, tags) keyword rows in rowid order: FTS5 writes
        out its pending data whenever a rowid is lower than the last, so a batch spread
        over namespaces would otherwise leave a tiny segment per row."""
        if not rows:
            return
        number: dict[bytes, int] = {}
        for key in {r[0] for r in rows}:
            number[key] = conn.execute(
                "SELECT id FROM namespaces WHERE key = ?", (key,)
            ).fetchone()[0]
        conn.executemany(
            "INSERT INTO items_fts(rowid, text, tags) VALUES (?, ?, ?)",
            sorted(
                ((number[key] << ITEM_BITS) | item, text, tags) for key, item, text, tags in rows
            ),
        )

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
        if item_id > ITEM_MASK:
            raise StoreError(
                f"{self.path} has used up its item ids (over {ITEM_MASK:,}); copy its items "
                "into a new file (`memshelf memories export`, then `import`)."
            )
        if item_id <= newest:  # an existing row: drop its old vectors and keywords
            conn.execute("DELETE FROM vectors WHERE item_id = ?", (item_id,))
            conn.execute(_DELETE_KEYWORDS, (q.order_key(op.namespace), item_id))
        return item_id

    # ----------------------------------------------------------------- TTL
    def _schedule_refreshes(self, ids: set[int], now: float) -> set[int]:
        """Queue refresh-on-read expiries; returns the ones this batch must write now."""
        inline = self._ttl.schedule(self._conn, ids, now)
        if self._ttl.pending:
            self._ttl.start(self)
        return inline

    @property
    def _maintainer(self) -> threading.Thread | None:
        return self._ttl.thread

    def flush_refreshes(self) -> None:
        """Write queued refresh-on-read expiries now (the maintenance thread does this
        within a second; call it before copying the file)."""
        with self._lock:
            self._check_open()
            if self._ttl.pending:
                with self._tx():  # writes the queued refreshes
                    pass

    def sweep_ttl(self) -> int:
        """Delete expired items, with their vectors and keyword entries; returns how many."""
        with self._lock:
            self._check_open()
            self._sync_with_other_writers()
            with self._tx() as conn:
                gone = sweep(conn, time.time())
            for item_id, ns in gone:
                block = self._blocks.get(ns)
                if block is not None:
                    block.remove(item_id)
            for ns in {ns for _, ns in gone}:
                self._blocks.changed(ns)
            return len(gone)

    def _sweep_interval_s(self) -> float | None:
        minutes = (self.ttl_config or {}).get("sweep_interval_minutes")
        return float(minutes) * 60.0 if minutes else None

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
                "namespaces": _namespaces.count(conn),
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
