"""The SQLite store's schema: numbered migrations that upgrade a file in place.

A file records its schema in ``PRAGMA user_version``; opening it runs every
later step in one transaction, so an old file is upgraded once and a file
written by a newer memshelf is refused instead of misread. A step is never
edited once released: a change is a new step.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from memshelf.errors import StoreFileError

SCHEMA_VERSION = 5

# An items row that has not expired at time ``?``.
LIVE = "(expires_at IS NULL OR expires_at > ?)"

# A namespace's row in the namespaces table: its order key and depth, from items.ns.
_NS_KEY = "CAST(replace({0}.ns, '.', char(0)) AS BLOB)"
_NS_DEPTH = "length({0}.ns) - length(replace({0}.ns, '.', '')) + 1"

# Keyword rows are keyed by (namespace id << ITEM_BITS) | item id, so one namespace's
# rows are one rowid range, which FTS5 seeks to instead of intersecting a tag's doclist.
ITEM_BITS = 32
ITEM_MASK = (1 << ITEM_BITS) - 1
MAX_NAMESPACE_ID = (1 << (63 - ITEM_BITS)) - 1
_NS_ID = "(SELECT id FROM namespaces WHERE key = {key})"
_NEXT_NS_ID = "(SELECT coalesce(max(id), 0) + 1 FROM namespaces)"


def fts_rowid_sql(key: str, item: str) -> str:
    """SQL for an item's keyword rowid, from SQL for its namespace key and its id."""
    return f"(({_NS_ID.format(key=key)} << {ITEM_BITS}) | {item})"


def _fts_rowid_of(row: str) -> str:
    return fts_rowid_sql(_NS_KEY.format(row), f"{row}.id")


def _ns_added(row: str) -> str:
    return f"""INSERT INTO namespaces(key, ns, depth, items, id)
            VALUES ({_NS_KEY.format(row)}, {row}.ns, {_NS_DEPTH.format(row)}, 1, {_NEXT_NS_ID})
            ON CONFLICT(key) DO UPDATE SET items = items + 1;"""


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
    # Each namespace gets a number, and keyword rows are re-keyed to
    # (namespace number << ITEM_BITS) | item id: a search in one namespace reads one
    # rowid range of the keyword index, not a tag matched by every item in it.
    # The keyword row goes in a BEFORE DELETE trigger, while the namespace row (which
    # names the range) is still there.
    5: [
        "ALTER TABLE namespaces ADD COLUMN id INTEGER",
        """UPDATE namespaces SET id = numbered.n
            FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM namespaces) AS numbered
            WHERE namespaces.key = numbered.key""",
        "CREATE UNIQUE INDEX namespaces_id ON namespaces (id)",
        "DROP TRIGGER IF EXISTS items_ns_added",
        "DROP TRIGGER IF EXISTS items_ns_moved",
        "DROP TRIGGER IF EXISTS items_delete",
        "DROP TRIGGER IF EXISTS items_fts_delete",
        "DROP TABLE IF EXISTS items_fts_terms",
        "CREATE VIRTUAL TABLE items_fts_v5 USING fts5(text, tags)",
        f"""INSERT INTO items_fts_v5(rowid, text, tags)
            SELECT (n.id << {ITEM_BITS}) | i.id, f.text, f.tags
            FROM items_fts AS f
            JOIN items AS i ON i.id = (f.rowid & {ITEM_MASK})
            JOIN namespaces AS n ON n.key = {_NS_KEY.format("i")}
            ORDER BY 1""",
        "DROP TABLE items_fts",
        "ALTER TABLE items_fts_v5 RENAME TO items_fts",
        "CREATE VIRTUAL TABLE items_fts_terms USING fts5vocab(items_fts, 'row')",
        f"""CREATE TRIGGER items_ns_added AFTER INSERT ON items BEGIN
            {_ns_added("new")}
        END""",
        f"""CREATE TRIGGER items_ns_moved AFTER UPDATE OF ns ON items
        WHEN new.ns IS NOT old.ns BEGIN
            {_ns_added("new")}
            INSERT INTO items_fts(rowid, text, tags)
                SELECT {_fts_rowid_of("new")}, text, tags FROM items_fts
                WHERE rowid = {_fts_rowid_of("old")};
            DELETE FROM items_fts WHERE rowid = {_fts_rowid_of("old")};
            UPDATE namespaces SET items = items - 1 WHERE key = {_NS_KEY.format("old")};
            DELETE FROM namespaces WHERE key = {_NS_KEY.format("old")} AND items <= 0;
        END""",
        """CREATE TRIGGER items_delete AFTER DELETE ON items BEGIN
            DELETE FROM vectors WHERE item_id = old.id;
        END""",
        f"""CREATE TRIGGER items_fts_delete BEFORE DELETE ON items BEGIN
            DELETE FROM items_fts WHERE rowid = {_fts_rowid_of("old")};
        END""",
    ],
}


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file to SCHEMA_VERSION; the caller holds a write transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreFileError(
            path,
            f"{path} was written by a newer memshelf (schema {version} > "
            f"{SCHEMA_VERSION}). Upgrade memshelf: pip install -U memshelf.",
        )
    if version == 0:
        refuse_foreign(conn, path)
    if path not in (":memory:", "") and not os.access(path, os.W_OK):  # "": a temp file
        # SQLite would open it read-only and fail at the first write (reads refresh TTLs).
        raise StoreFileError(path, explain(path, PermissionError(errno.EACCES, "read-only")))
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[step]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step}")
    probe(conn)


FTS_SHADOWS = ("config", "content", "data", "docsize", "idx")

# One cheap read through the first pages of every table and unique index memshelf uses.
# A damaged store then fails when it is opened, naming the file, instead of answering
# "nothing found" from the part that still reads (a full integrity check reads every page).
_PROBES = [
    "SELECT 1 FROM meta LIMIT 1",
    "SELECT 1 FROM namespaces LIMIT 1",
    "SELECT id FROM namespaces ORDER BY id LIMIT 1",
    "SELECT value FROM items LIMIT 1",
    "SELECT ns, key FROM items ORDER BY ns, key LIMIT 1",
    "SELECT ns FROM items ORDER BY ns, updated_at LIMIT 1",
    "SELECT expires_at FROM items WHERE expires_at IS NOT NULL ORDER BY expires_at LIMIT 1",
    "SELECT vec FROM vectors LIMIT 1",
    "SELECT item_id, path FROM vectors ORDER BY item_id, path LIMIT 1",
    "SELECT ns FROM vectors ORDER BY ns LIMIT 1",
    "SELECT ns FROM vector_changes LIMIT 1",
    "SELECT seq FROM sqlite_sequence LIMIT 1",
    *(f"SELECT * FROM items_fts_{part} LIMIT 1" for part in FTS_SHADOWS),
    "SELECT rowid FROM items_fts WHERE items_fts MATCH 'memshelf' LIMIT 1",
]


def probe(conn: sqlite3.Connection) -> None:
    """Read the first page of each table and index; SQLite raises on a damaged one (or a
    missing table), and :func:`file_errors` names the file."""
    for statement in _PROBES:
        conn.execute(statement).fetchall()


_ELSEWHERE = (
    "Point --store (or MEMSHELF_STORE_URL; MEMSHELF_DATA_DIR for the default file) at a "
    "memshelf store, or at a new file to start one."
)


def refuse_foreign(conn: sqlite3.Connection, path: str) -> None:
    """A version-0 file with tables belongs to another program: adding ours would damage it."""
    if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
        return
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 4"
        )
    ]
    if names:
        raise StoreFileError(
            path,
            f"{path} is a SQLite database of another program (tables: {', '.join(names)}); "
            f"memshelf leaves it untouched. {_ELSEWHERE}",
        )


def _unopenable(path: str) -> str:
    """Why a file cannot be opened, from what the file system says about it and its folder."""
    file, folder = Path(path), Path(path).parent
    if file.is_dir():
        return f"{path} is a directory, not a store file. {_ELSEWHERE}"
    if not folder.is_dir():
        above = next((p for p in folder.parents if p.exists()), folder)
        if folder.exists() or not above.is_dir():
            return f"{folder if folder.exists() else above} is a file, not a folder. {_ELSEWHERE}"
        return f"The folder {folder} could not be created under {above}. {_ELSEWHERE}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"Cannot create or open {path}: its folder {folder} is not writable. Make it "
            f"writable (chmod u+w {folder}) or {_ELSEWHERE[0].lower()}{_ELSEWHERE[1:]}"
        )
    return f"Cannot open {path} (permissions?). Check that you can read and write it."


def explain(path: str, exc: BaseException) -> str:
    """The one message for a SQLite or file-system failure on the store file at ``path``."""
    text = str(exc)
    low = text.lower()
    code = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        low = "disk is full"
    if "file is not a database" in low or "malformed" in low or "vtable constructor" in low:
        return (
            f"{path} is not a memshelf store: SQLite says {text!r} (another kind of file, "
            f"or a corrupted one). {_ELSEWHERE} A damaged store comes back from a backup, "
            "or from an earlier `memshelf memories export` file loaded into a new store with "
            "`memshelf memories import`."
        )
    if "readonly" in low or "read-only" in low or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{path} cannot be written (the file or its folder is read-only; SQLite's WAL "
            "also writes -wal and -shm files beside it). Make both writable, or copy the "
            "file somewhere writable. Nothing was written."
        )
    if "disk is full" in low or "disk i/o error" in low or "database or disk is full" in low:
        return (
            f"Writing {path} failed ({text}): the disk is full or a file size limit was hit "
            "(or the disk itself failed). The whole batch was rolled back and the file is "
            "unchanged; free some space and run the command again."
        )
    if "locked" in low or "busy" in low:
        return (
            f"{path} stayed locked by another process for longer than the 10 s wait. "
            "Run the command again once the other writer (a long import or reembed) is done."
        )
    if "unable to open" in low or isinstance(exc, OSError):
        return _unopenable(path)
    return f"The store file {path} failed: {text}. {_ELSEWHERE}"


@contextlib.contextmanager
def file_errors(path: str) -> Iterator[None]:
    """Turn SQLite and OS errors on the store file into a :class:`StoreFileError` naming it."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StoreFileError(path, explain(path, exc)) from exc
