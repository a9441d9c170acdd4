"""No user id, whatever it holds, reaches another user's shelf (property-based)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from langgraph.store.base import BaseStore

from memshelf.namespaces import MEMORIES, memories_namespace
from tests.contract.conftest import StoreFactory, fake_index

TRICKY = [
    "john_doe",
    "john-doe",
    "%",
    "_",
    "*",
    "'",
    '"',
    "..",
    ".",
    "a.b",
    "al",
    "alice",
    "ALICE",
    "é",
    "e\u0301",
    "🙂",
    "a b",
    "a%2Eb",
    "x\\y",
    "a/b",
    "NULL",
    "' OR 1=1 --",
    "-",
    "-alice",
    "@",
    "@alice",
    "{",
    "}",
    "{alice}",
    "a|b",
    "a,b",
    "*alice*",
    "%alice%",
    "a:b",
    "\\",
    "$",
    "alice bob",
]
ids = st.one_of(st.sampled_from(TRICKY), st.text(min_size=1, max_size=12).filter(str.strip))
_counter = itertools.count()


def _check_pair(store: BaseStore, a: str, b: str) -> None:
    run = next(_counter)
    na, nb = memories_namespace(a), memories_namespace(b)
    store.put(na, f"fact{run}", {"text": f"{a} owns this fact", "owner": a})
    store.put(nb, f"fact{run}", {"text": f"{a} owns this fact too", "owner": b})
    for hit in store.search(na, query=f"{a} owns this fact", limit=50):
        assert hit.namespace == na and hit.value["owner"] == a
    for hit in store.search(na, limit=50):
        assert hit.value["owner"] == a
    got = store.get(na, f"fact{run}")
    assert got is not None and got.value["owner"] == a
    under = store.list_namespaces(prefix=na)
    assert under == [na]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=ids, b=ids)
def test_distinct_users_never_see_each_other(make_store: StoreFactory, a: str, b: str) -> None:
    assume(a != b)
    store = _stores.setdefault(id(make_store), make_store(index=fake_index()))
    _check_pair(store, a, b)
    _check_pair(store, b, a)


_stores: dict[int, BaseStore] = {}


def test_prefix_of_an_id_never_matches_the_longer_id(make_store: StoreFactory) -> None:
    store = make_store(index=fake_index())
    store.put(memories_namespace("alice"), "k", {"text": "alice deploys on fly io"})
    assert store.search(memories_namespace("al"), query="deploys fly io") == []
    assert store.search((MEMORIES, "al")) == []
    assert store.list_namespaces(prefix=memories_namespace("al")) == []


def test_ids_that_look_alike_stay_apart(make_store: StoreFactory) -> None:
    store = make_store(index=fake_index())
    for i, uid in enumerate(TRICKY):
        store.put(memories_namespace(uid), "k", {"text": "same text", "owner": uid, "i": i})
    for uid in TRICKY:
        hits = store.search(memories_namespace(uid), query="same text", limit=50)
        assert [h.value["owner"] for h in hits] == [uid]


def test_file_store_isolation_survives_reopen(
    make_memshelf_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "iso.db"
    store = make_memshelf_store(index=fake_index(), path=path)
    for uid in TRICKY:
        store.put(memories_namespace(uid), "k", {"text": "same", "owner": uid})
    store.close()
    store = make_memshelf_store(index=fake_index(), path=path)
    for uid in TRICKY:
        assert [h.value["owner"] for h in store.search(memories_namespace(uid))] == [uid]


# Labels as a store sees them (not percent-encoded): query-engine syntax must never leak.
SYNTAX = "-@{}|*%,:;()[]~!\"'\\ $^&/é🙂"
raw_labels = st.text(alphabet=st.sampled_from(list(SYNTAX) + list("ab")), min_size=1, max_size=6)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=raw_labels, b=raw_labels)
def test_raw_labels_with_query_syntax_are_exact(make_store: StoreFactory, a: str, b: str) -> None:
    assume(a != b and "*" not in (a, b))  # a bare '*' label is LangGraph's own wildcard
    store = _raw_stores.setdefault(id(make_store), make_store(index=fake_index()))
    run = next(_counter)
    na, nb = ("raw", a), ("raw", b)
    store.put(na, f"k{run}", {"text": "shared words here", "owner": a})
    store.put(nb, f"k{run}", {"text": "shared words here", "owner": b})
    store.put((*na, "child"), f"k{run}", {"text": "shared words here", "owner": a})
    for hit in store.search(na, query="shared words", limit=100):
        assert hit.namespace[:2] == na and hit.value["owner"] == a
    for hit in store.search(na, limit=100):
        assert hit.value["owner"] == a
    got = store.get(nb, f"k{run}")
    assert got is not None and got.value["owner"] == b
    assert store.list_namespaces(prefix=na) == [na, (*na, "child")]
    assert na in store.list_namespaces(prefix=("raw",), max_depth=2, limit=100_000)  # shared store


_raw_stores: dict[int, BaseStore] = {}
