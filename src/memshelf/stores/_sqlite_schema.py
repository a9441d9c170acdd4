"""The SQLite store's schema: numbered migrations that upgrade a file in place.

A file records its schema in ``PRAGMA user_version``; opening it runs every
later step in one transaction, so an old file is upgraded once and a file
written by a newer memshelf is refused instead of misread. A step is never
edited once released: a change is a new step.
"""

from __future__ import annotations

import sqlite3

from memshelf.errors import StoreError

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
        raise StoreError(
            f"{path} was written by a newer memshelf (schema {version} > "
            f"{SCHEMA_VERSION}). Upgrade memshelf: pip install -U memshelf."
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[step]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step}")
