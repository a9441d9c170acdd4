"""Forgetting a user anonymises their ids in the team findings they contributed to (the
finding's cause, its author and decisions, and every history snapshot), on SQLite and
Redis, while the findings themselves and other users' ids stay."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.memory.shelf import all_items
from memshelf.memory.types import now_iso
from memshelf.ops.forget import forget_everything
from memshelf.ops.keys import KeyRing
from memshelf.stores import open_store
from memshelf.team.findings import (
    FORGOTTEN_USER,
    Cause,
    Evidence,
    decide,
    findings_namespace,
    list_findings,
    propose,
    team_history_namespace,
)

USER = "alice.smith"
THREAD = "thread-about-bees-42"


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    extra: dict[str, object] = {}
    if request.param == "redis":
        extra = {
            "store_url": request.getfixturevalue("redis_url"),
            "redis_prefix": f"fgc{uuid.uuid4().hex[:10]}",
        }
    settings = Settings(
        data_dir=tmp_path / "data",
        embeddings="fake",
        chat_model="fake",
        **extra,  # type: ignore[arg-type]
    )
    with open_store(settings=settings) as opened:
        yield opened


def _evidence() -> Evidence:
    return Evidence("https://example.org/bees", "Bees dance.", "", now_iso())


def _team_dump(store: BaseStore, team: str) -> str:
    records = [
        *all_items(store, findings_namespace(team)),
        *all_items(store, team_history_namespace(team)),
    ]
    return json.dumps([r.value for r in records])


def test_forget_me_anonymises_the_user_in_team_findings(store: BaseStore) -> None:
    key, _ = KeyRing(store).create(USER)
    theirs = propose(
        store,
        "bees",
        "Honeybees communicate by dancing.",
        _evidence(),
        author=f"mcp:{USER}",
        cause=Cause(user_id=USER),
    )
    asked = propose(
        store,
        "bees",
        "A worker bee lives about six weeks.",
        _evidence(),
        author="researcher",
        cause=Cause(user_id=USER, thread_id=THREAD),
    )
    decide(store, "bees", asked, "verified", by=f"api:{key.key_id}", why="The page says so.")
    others = propose(
        store,
        "wasps",
        "Wasps build paper nests.",
        _evidence(),
        author="mcp:bob",
        cause=Cause(user_id="bob", thread_id="bobs-thread"),
    )
    before = _team_dump(store, "bees")
    assert USER in before and THREAD in before and key.key_id in before

    forget_everything(store, None, USER)

    after = _team_dump(store, "bees")
    assert USER not in after and THREAD not in after and key.key_id not in after
    assert FORGOTTEN_USER in after
    kept = {f.key: f.value for f in list_findings(store, "bees")}
    assert set(kept) == {theirs, asked}  # the team keeps its findings
    assert kept[asked]["status"] == "verified" and kept[asked]["author"] == "researcher"
    assert kept[asked]["cause"] == {"user_id": FORGOTTEN_USER, "thread_id": None}
    assert kept[theirs]["text"] == "Honeybees communicate by dancing."
    (wasps,) = list_findings(store, "wasps")
    assert wasps.key == others and wasps.value["author"] == "mcp:bob"
    assert wasps.value["cause"] == {"user_id": "bob", "thread_id": "bobs-thread"}
