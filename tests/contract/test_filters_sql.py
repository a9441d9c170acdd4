"""Filters and namespace listings pushed into SQL return exactly what Python's rules return.

SQLite evaluates filters on ``json_extract`` and walks a namespaces table; the
reference is ``_query.matches_filter`` over every item (memshelf's semantics)
and langgraph's InMemoryStore (where it does not raise). Values and filters are
drawn to hit the cases where SQLite's JSON and Python disagree: booleans vs
1/0, ints vs floats, huge ints, NaN, strings that parse as numbers, NUL,
missing keys vs null, nested dicts and lists, and keys with dots, quotes and
non-ASCII characters.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from langgraph.store.base import BaseStore, ListNamespacesOp, MatchCondition
from langgraph.store.memory import InMemoryStore

from memshelf.stores import _query as q
from memshelf.stores._sqlfilter import filter_condition
from memshelf.stores.sqlite import _MIGRATIONS, SqliteStore
from tests.contract.conftest import StoreFactory, fake_index

KEYS = ["a", "b", "n", "a.b", 'q"k', "back\\slash", "tab\tkey", "é", "🙂", "", "$x", "[0]"]
NUMBERS = [0, 1, -1, 2, 0.0, -0.0, 1.0, 0.5, 2.5, 1e-320, 2**53, 2**53 + 1, 10**20, 1e20, 2**63]
STRINGS = ["x", "X", "1", "2.5", " 2 ", "1_0", "inf", "nan", "", "é", "true", "null", "[]", "a\0b"]

keys = st.sampled_from(KEYS)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(-3, 3),
    st.sampled_from(STRINGS),
    st.text(max_size=3),
)
json_values = st.recursive(
    st.one_of(scalars, st.sampled_from([math.nan, math.inf, -math.inf])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
items = st.dictionaries(keys, json_values, max_size=4)

OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
structured = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(keys, inner, max_size=2)
    ),
    max_leaves=4,
)
operator_args = st.one_of(scalars, structured, st.sampled_from([math.nan, math.inf, "abc"]))
conditions = st.recursive(
    st.one_of(scalars, st.dictionaries(st.sampled_from(OPERATORS), operator_args, min_size=1)),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(keys, inner, max_size=2)
    ),
    max_leaves=5,
)
filters = st.dictionaries(keys, conditions, min_size=1, max_size=3)


def _valid(filter_: dict[str, Any]) -> bool:
    try:
        q.check_filter(filter_)
    except ValueError:
        return False
    return True


def _python(value: dict[str, Any], filter_: dict[str, Any]) -> bool | None:
    """memshelf's rule, or None where it raises (float() of a 309-digit int, say)."""
    try:
        return q.matches_filter(value, filter_)
    except (ArithmeticError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------- the SQL condition alone
_conn = sqlite3.connect(":memory:")
_conn.execute("CREATE TABLE items (value TEXT NOT NULL)")


def _sql_keeps(value: dict[str, Any], filter_: dict[str, Any]) -> bool:
    blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    sql, args = filter_condition(filter_)
    _conn.execute("DELETE FROM items")
    _conn.execute("INSERT INTO items(value) VALUES (?)", (blob,))
    return bool(_conn.execute(f"SELECT count(*) FROM items WHERE {sql}", args).fetchone()[0])


@settings(max_examples=1500, deadline=None)
@given(value=items, filter_=filters)
def test_sql_condition_keeps_every_row_python_accepts(
    value: dict[str, Any], filter_: dict[str, Any]
) -> None:
    expected = _python(value, filter_)
    assume(_valid(filter_) and expected is not None)
    if expected:
        assert _sql_keeps(value, filter_), (value, filter_, filter_condition(filter_))
    else:
        _sql_keeps(value, filter_)  # never a SQL error, whatever the value holds


def test_sql_condition_narrows_the_common_filters() -> None:
    """The prefilter does real work: plain equality, ranges and nesting are decided in SQL."""
    rows: list[dict[str, Any]] = [
        {"kind": "fact", "n": 1, "meta": {"src": "web"}, "tags": ["a", "b"]},
        {"kind": "note", "n": 5, "meta": {"src": "chat"}, "tags": ["a"]},
        {"kind": True, "n": "5", "meta": "web"},
        {"n": None},
    ]
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"kind": "fact"}, [0]),
        ({"n": 1}, [0]),
        ({"kind": 1}, [2]),  # True == 1, as in Python
        ({"kind": {"$ne": "fact"}}, [1, 2, 3]),
        ({"n": {"$gt": 2}}, [1, 2]),  # "5" is kept for Python's float("5")
        ({"n": {"$lt": 2}}, [0, 2]),
        ({"meta": {"src": "web"}}, [0]),
        ({"tags": ["a", "b"]}, [0]),
        ({"tags": {"$eq": ["a"]}}, [1]),
        ({"n": None}, [3]),
        ({"missing": None}, [0, 1, 2, 3]),
    ]
    for filter_, kept in cases:
        got = [i for i, row in enumerate(rows) if _sql_keeps(row, filter_)]
        assert got == kept, filter_


def test_unreadable_json_skips_the_sql_test() -> None:
    """NaN and Infinity (json.dumps writes them, SQLite 3.40 cannot read them) reach Python."""
    assert _sql_keeps({"a": math.nan, "b": 1}, {"b": 1})
    assert _sql_keeps({"a": math.inf, "b": "x"}, {"b": "x"})
    assert _sql_keeps({"a": "x\0y"}, {"a": {"$ne": "x"}})


def test_unknown_operator_fails_even_when_no_item_reaches_it(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        with pytest.raises(ValueError, match=r"Unsupported filter operator '\$in'"):
            store.search(("empty",), filter={"kind": {"$in": ["a"]}})
        store.put(("f",), "k", {"kind": "b"})
        with pytest.raises(ValueError, match="Unsupported filter operator"):
            store.search(("f",), filter={"kind": {"$eq": "a", "$regex": "x"}})


# --------------------------------------------------------------------- through the stores
_counter = itertools.count()
_stores: dict[int, BaseStore] = {}


def _keys(store: BaseStore, ns: tuple[str, ...], **kw: Any) -> list[str]:
    return [hit.key for hit in store.search(ns, limit=1000, **kw)]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(items, min_size=1, max_size=8), filter_=filters, data=st.data())
def test_filtered_search_matches_python_and_inmemory(
    make_memshelf_store: StoreFactory,
    values: list[dict[str, Any]],
    filter_: dict[str, Any],
    data: st.DataObject,
) -> None:
    expected = [_python(v, filter_) for v in values]
    assume(_valid(filter_) and None not in expected)
    store = _stores.setdefault(id(make_memshelf_store), make_memshelf_store(index=fake_index()))
    ns = ("f", f"run{next(_counter)}")
    reference = InMemoryStore()
    for i, value in enumerate(values):
        body = {**value, "text": f"note {i} about tea"} if i % 2 else value
        store.put(ns, f"k{i}", body, index=["text"] if i % 2 else False)
        reference.put(ns, f"k{i}", body)
    wanted = {f"k{i}" for i, v in enumerate(values) if _python(v, filter_)}
    listed = _keys(store, ns, filter=filter_)
    assert set(listed) == wanted and len(listed) == len(wanted)
    assert set(_keys(store, ns, filter=filter_, query="tea note")) == wanted
    # InMemoryStore raises where memshelf says "no match" (float(None) for $gt).
    with contextlib.suppress(TypeError, ValueError):
        assert {hit.key for hit in reference.search(ns, filter=filter_, limit=1000)} == wanted
    if isinstance(store, SqliteStore):  # Redis orders equal timestamps as it likes
        offset = data.draw(st.integers(0, len(listed)), label="offset")
        page = [h.key for h in store.search(ns, filter=filter_, limit=2, offset=offset)]
        assert page == listed[offset : offset + 2]


# --------------------------------------------------------------------- list_namespaces
# Labels that sort around the separator, and GLOB's own syntax (matched literally).
LABELS = ["a", "b", "ab", "a-b", "[a]", "a?", "a%2E", "é", "a\x01", "z"]
namespaces = st.lists(st.sampled_from(LABELS), min_size=1, max_size=4).map(tuple)
match_paths = st.lists(st.sampled_from([*LABELS[:6], "*"]), min_size=1, max_size=3).map(tuple)
match_conditions = st.lists(
    st.builds(MatchCondition, match_type=st.sampled_from(["prefix", "suffix"]), path=match_paths),
    max_size=2,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored=st.lists(namespaces, min_size=1, max_size=12),
    conditions=match_conditions,
    max_depth=st.one_of(st.none(), st.integers(1, 4)),
    limit=st.integers(1, 12),
    offset=st.integers(0, 6),
)
def test_list_namespaces_matches_inmemory(
    make_memshelf_store: StoreFactory,
    tmp_path: Path,
    stored: list[tuple[str, ...]],
    conditions: list[MatchCondition],
    max_depth: int | None,
    limit: int,
    offset: int,
) -> None:
    store = make_memshelf_store(path=tmp_path / f"ns{next(_counter)}.db")
    reference = InMemoryStore()
    for i, ns in enumerate(stored):
        store.put(ns, f"k{i}", {"i": i})
        reference.put(ns, f"k{i}", {"i": i})
    store.put(("a", "q"), "tmp", {})  # a namespace that held items and no longer does
    store.delete(("a", "q"), "tmp")  # (InMemoryStore would keep listing it: not compared)
    op = ListNamespacesOp(
        match_conditions=tuple(conditions), max_depth=max_depth, limit=limit, offset=offset
    )
    assert store.batch([op]) == reference.batch([op])
    everything = ListNamespacesOp(match_conditions=tuple(conditions), limit=1000)
    assert store.batch([everything]) == reference.batch([everything])


def test_list_namespaces_orders_like_tuples_not_like_joined_strings(
    make_store: StoreFactory,
) -> None:
    """'-' and '%' (in every encoded user id) sort before '.', so joined strings misorder."""
    store = make_store()
    for ns in [("m", "a", "b"), ("m", "a-c"), ("m", "a%2E"), ("m", "a"), ("n",)]:
        store.put(ns, "k", {})
    assert store.list_namespaces(prefix=("m",)) == [
        ("m", "a"),
        ("m", "a", "b"),
        ("m", "a%2E"),
        ("m", "a-c"),
    ]
    assert store.list_namespaces(prefix=("m",), max_depth=2, limit=2, offset=1) == [
        ("m", "a%2E"),
        ("m", "a-c"),
    ]
    assert store.list_namespaces(max_depth=1) == [("m",), ("n",)]


def test_glob_syntax_in_labels_matches_literally(make_store: StoreFactory) -> None:
    store = make_store()
    for ns in [("m", "[a]"), ("m", "a"), ("m", "a?"), ("m", "ab"), ("m", "*x"), ("m", "yx")]:
        store.put(ns, "k", {})
    assert store.list_namespaces(prefix=("m", "[a]")) == [("m", "[a]")]
    assert store.list_namespaces(suffix=("a?",)) == [("m", "a?")]
    assert store.list_namespaces(suffix=("*x",)) == [("m", "*x")]  # only a bare '*' is a wildcard
    assert store.list_namespaces(prefix=("m", "*"), suffix=("[a]",)) == [("m", "[a]")]


def test_odd_bounds_keep_python_slice_semantics(make_store: StoreFactory) -> None:
    store = make_store()
    for ns in [("a",), ("b",), ("c", "d")]:
        store.put(ns, "k", {})
    assert store.batch([ListNamespacesOp(limit=-1, offset=0)]) == [[("a",), ("b",)]]
    assert store.batch([ListNamespacesOp(limit=5, offset=-1)]) == [[("c", "d")]]
    assert store.list_namespaces(limit=0) == []


def test_list_namespaces_hides_namespaces_whose_items_all_expired(
    make_memshelf_store: StoreFactory,
) -> None:
    store = make_memshelf_store(ttl={"default_ttl": 60.0})
    store.put(("u", "gone"), "k", {}, ttl=0.002)
    store.put(("u", "mixed"), "old", {}, ttl=0.002)
    store.put(("u", "mixed"), "new", {})
    store.put(("u", "kept", "deep"), "k", {})
    time.sleep(0.25)
    assert store.list_namespaces(prefix=("u",)) == [("u", "kept", "deep"), ("u", "mixed")]
    assert store.list_namespaces(prefix=("u",), max_depth=2) == [("u", "kept"), ("u", "mixed")]


def test_namespaces_table_follows_puts_deletes_and_sweeps(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", ttl={"default_ttl": 60.0})
    store.put(("a", "b"), "1", {})
    store.put(("a", "b"), "1", {"v": 2})  # an overwrite is not a second item
    store.put(("a", "b"), "2", {})
    store.put(("a", "c"), "1", {}, ttl=0.002)

    def table() -> list[tuple[str, int]]:
        return store._conn.execute("SELECT ns, items FROM namespaces ORDER BY key").fetchall()

    assert table() == [("a.b", 2), ("a.c", 1)]
    store.delete(("a", "b"), "1")
    time.sleep(0.2)
    assert store.sweep_ttl() == 1
    assert table() == [("a.b", 1)]
    assert store._namespaces_under(("a",)) == ["a.b"]
    store.close()


def test_migration_fills_the_namespaces_table_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    for ns in [("x", "1"), ("x", "2"), ("x", "2"), ("y",)]:
        store.put(ns, f"k{len(ns)}{ns[-1]}", {})
    store.put(("x", "2"), "other", {})
    # What a file from before the table looked like: no table, no triggers, older schema.
    conn = store._conn
    for name in ("items_ns_added", "items_ns_removed", "items_ns_moved"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE namespaces")
    step = next(n for n, sql in _MIGRATIONS.items() if "TABLE IF NOT EXISTS namespaces" in sql[0])
    conn.execute(f"PRAGMA user_version = {step - 1}")
    store.close()
    store = SqliteStore(path)
    assert store._conn.execute("SELECT ns, items FROM namespaces ORDER BY key").fetchall() == [
        ("x.1", 1),
        ("x.2", 2),
        ("y", 1),
    ]
    assert store.list_namespaces(max_depth=1) == [("x",), ("y",)]
    store.put(("z",), "k", {})
    assert store.list_namespaces(prefix=("z",)) == [("z",)]
    store.close()
