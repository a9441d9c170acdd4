"""TTL upkeep for the SQLite store: refresh-on-read without a write per read, and sweeps.

A read of an item with a TTL must push its expiry later, but a write
transaction per read would serialize readers behind every writer. So an expiry
that would move by less than ``REFRESH_SLACK`` of the item's TTL (at most
``REFRESH_SLACK_MAX_S``) is left as it is; other refreshes are queued and
written by one maintenance thread per store within ``REFRESH_FLUSH_S``, unless
the item is so close to expiring that the read's own batch must write it. The
same thread deletes expired items every ``sweep_interval_minutes`` (like
LangGraph's ``start_ttl_sweeper``), so no user request pays for either.

The thread writes through its own connection (a file store's), so while it
waits for another process's write lock this process's reads go on. Queued
refreshes leave the queue only with the transaction that writes them: one
that rolls back (or fails to commit) puts them back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from memshelf.errors import StoreError

log = logging.getLogger(__name__)

REFRESH_SLACK = 0.01
REFRESH_SLACK_MAX_S = 60.0
REFRESH_FLUSH_S = 1.0
REFRESH_INLINE_BELOW_S = 30.0
# How long the maintenance connection waits for another writer before trying next round.
MAINTENANCE_BUSY_MS = 2000
_SQL_CHUNK = 500


class Maintained(Protocol):
    """What the maintenance thread calls on a store it has no connection of its own for."""

    def flush_refreshes(self) -> None: ...

    def sweep_ttl(self) -> int: ...


class Maintenance:
    """One store's queue of refresh-on-read expiries and the thread that writes them."""

    def __init__(
        self,
        name: str,
        sweep_s: float | None,
        connect: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        """``connect`` opens the thread's own connection (None: go through the store)."""
        self.name = name
        self.sweep_s = sweep_s
        self.connect = connect
        self.pending: dict[int, float] = {}  # item id -> time it was read
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._mutex = threading.Lock()  # the queue is filled by readers, emptied by writers

    def schedule(self, conn: sqlite3.Connection, ids: Iterable[int], now: float) -> set[int]:
        """Sort read items into nothing to do, refresh later (queued), refresh now
        (returned, for the read's own batch to write)."""
        inline: set[int] = set()
        found = list(ids)
        for start in range(0, len(found), _SQL_CHUNK):
            part = found[start : start + _SQL_CHUNK]
            for item_id, ttl, expires in conn.execute(
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
                    with self._mutex:
                        self.pending[item_id] = now
        return inline

    def flush(self, conn: sqlite3.Connection) -> dict[int, float]:
        """Write queued refreshes inside the caller's write transaction; returns them, for
        :meth:`requeue` if that transaction does not commit.

        A refresh only ever pushes an expiry later, and never revives an item that
        expired (or was rewritten by a later put) since it was read."""
        with self._mutex:
            taken, self.pending = self.pending, {}
        if not taken:
            return taken
        now = time.time()
        try:
            conn.executemany(
                "UPDATE items SET expires_at = ? + ttl_minutes * 60.0 WHERE id = ? "
                "AND ttl_minutes IS NOT NULL AND expires_at > ? "
                "AND expires_at < ? + ttl_minutes * 60.0",
                [(read, item_id, now, read) for item_id, read in taken.items()],
            )
        except BaseException:
            self.requeue(taken)
            raise
        return taken

    def requeue(self, taken: dict[int, float]) -> None:
        """Put back refreshes whose transaction rolled back (a later read of an item wins)."""
        if not taken:
            return
        with self._mutex:
            for item_id, read in taken.items():
                if self.pending.get(item_id, 0.0) < read:
                    self.pending[item_id] = read

    def start(self, store: Maintained) -> None:
        """Start the thread (once; never after stop)."""
        if self.thread is not None or self._stop.is_set():
            return
        self.thread = threading.Thread(
            target=_maintain,
            args=(weakref.ref(store), self),
            name=f"memshelf-sqlite-ttl:{self.name}",
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it, unless called from it."""
        self._stop.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)


def side_connection(path: str) -> sqlite3.Connection:
    """The maintenance thread's own connection to the store file at ``path``: the store's
    settings, and a shorter wait for the write lock (it tries again next round)."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {MAINTENANCE_BUSY_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA secure_delete = ON")  # sweeps delete: freed pages are zeroed
    return conn


def sweep(conn: sqlite3.Connection, now: float) -> list[tuple[int, str]]:
    """Delete items expired at ``now`` (triggers take their vectors and keyword rows);
    returns their (id, encoded namespace). The caller holds a write transaction."""
    rows: list[tuple[int, str]] = conn.execute(
        "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ? RETURNING id, ns",
        (now,),
    ).fetchall()
    return rows


def _maintain(ref: weakref.ref[Maintained], upkeep: Maintenance) -> None:
    """The maintenance loop; holds only a weak reference, so a dropped store goes away.

    With its own connection it never takes the store's lock, so waiting out another
    process's write lock stalls no reader here."""
    sweep_s = upkeep.sweep_s
    next_sweep = time.monotonic() + sweep_s if sweep_s else None
    conn: sqlite3.Connection | None = None
    try:
        while not upkeep.wait(min(REFRESH_FLUSH_S, sweep_s or REFRESH_FLUSH_S)):
            store = ref()
            if store is None:
                return
            due = next_sweep is not None and time.monotonic() >= next_sweep
            try:
                if upkeep.connect is None:
                    if upkeep.pending:
                        store.flush_refreshes()
                    if due:
                        store.sweep_ttl()
                elif upkeep.pending or due:
                    store = None  # the store may be dropped while this waits
                    conn = conn or upkeep.connect()
                    with write_tx(conn, upkeep):
                        if due:
                            sweep(conn, time.time())  # the change log tells every cache
                if due:
                    next_sweep = time.monotonic() + (sweep_s or 0.0)
            except StoreError:
                return  # closed under us
            except sqlite3.Error as exc:  # a busy or broken file: try again next round
                log.warning("memshelf store maintenance failed (%s); retrying", type(exc).__name__)
            finally:
                store = None
    finally:
        if conn is not None:
            conn.close()


@contextlib.contextmanager
def write_tx(conn: sqlite3.Connection, upkeep: Maintenance) -> Iterator[sqlite3.Connection]:
    """A write transaction that also writes the queued refreshes, and puts them back in
    the queue unless it commits."""
    conn.execute("BEGIN IMMEDIATE")
    taken: dict[int, float] = {}
    try:
        taken = upkeep.flush(conn)
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        upkeep.requeue(taken)
        raise
