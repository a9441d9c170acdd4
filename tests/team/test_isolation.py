"""No team id, whatever it holds, reaches another team's findings (property-based), and
the ops behave for another team's key exactly as for a key that does not exist."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import NotFoundError
from memshelf.ops import findings as ops
from memshelf.stores.sqlite import SqliteStore
from memshelf.team.findings import Evidence, decide, findings_namespace, propose
from tests.contract.test_isolation import TRICKY

ids = st.one_of(st.sampled_from(TRICKY), st.text(min_size=1, max_size=12).filter(str.strip))
_counter = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    path: Path = tmp_path_factory.mktemp("teams") / "teams.db"
    index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    with SqliteStore(path, index=index) as store:
        yield store


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=ids, b=ids)
def test_distinct_teams_never_see_each_other(shared: SqliteStore, a: str, b: str) -> None:
    assume(a != b)
    run = next(_counter)
    claim = f"Team {a} verified claim number {run} about waggle dances."
    ev = Evidence("http://example.org/p", claim, "0" * 64, "now")
    key = propose(shared, a, claim, ev, author="researcher")
    decide(shared, a, key, "verified", by="verifier", why="test")
    assert [v.key for v in ops.search(shared, a, claim)][:1] == [key]
    assert key not in {v.key for v in ops.search(shared, b, claim, status=None, limit=50)}
    assert key not in {v.key for v in ops.list_team_findings(shared, b)}
    for action in (
        lambda: ops.show(shared, b, key),
        lambda: ops.reject(shared, b, key, by="x", why="y"),
        lambda: ops.forget(shared, b, key),
    ):
        with pytest.raises(NotFoundError):
            action()
    assert shared.list_namespaces(prefix=findings_namespace(a)) == [findings_namespace(a)]
    assert ops.show(shared, a, key)[0].status == "verified"  # untouched by team b's attempts
