"""Whose rejection a verification may undo (issue 14): a person's stands unless forced;
the team's own verifier worker's, or the verifying person's own automatic one, is
re-checked as before. A real SQLite file; the refusal comes before any fetch."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.ops import findings as ops
from memshelf.team.findings import Evidence, content_sha256, decide, get_finding, propose
from memshelf.team.sources import Sources

CLAIM = "Drones are the male honeybees and they have no stinger."


def _rejected(store: BaseStore, by: str) -> str:
    ev = Evidence("note:drones.md", CLAIM, content_sha256(CLAIM), "now")
    key = propose(store, "bees", CLAIM, ev, author="researcher")
    decide(store, "bees", key, "rejected", by=by, why="an old page")
    return key


@pytest.mark.parametrize(("rejected_by", "verifier", "refused"), [
    ("cli:bob", "cli:ana", False),  # someone else's verification rejected it: re-checked
    ("verifier", "cli:ana", False),  # the team's verifier worker: re-checked by design
    ("cli:ana", "cli:ana", False),  # ana's own verification run rejected it
])  # fmt: skip
def test_only_a_person_s_rejection_stands(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path,
    rejected_by: str, verifier: str, refused: bool,
) -> None:  # fmt: skip
    key = _rejected(store, rejected_by)
    sources = Sources.create(Settings(data_dir=tmp_path / "d"))  # no notes: unreadable

    def verify(force: bool = False) -> None:
        ops.verify(store, "bees", key, sources=sources, model=model, by=verifier, force=force)

    if refused:
        with pytest.raises(ops.RejectedFindingError, match="rejected by cli:bob: an old page"):
            verify()
        assert get_finding(store, "bees", key).value["status"] == "rejected"
    with pytest.raises(ops.SourceUnreachableError):  # it went on to re-read the source
        verify(force=refused)


def test_a_rejection_by_hand_stands_even_for_its_author(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    ev = Evidence("note:drones.md", CLAIM, content_sha256(CLAIM), "now")
    key = propose(store, "bees", CLAIM, ev, author="researcher")
    ops.reject(store, "bees", key, by="cli:ana", why="outdated")
    sources = Sources.create(Settings(data_dir=tmp_path / "d"))
    with pytest.raises(ops.RejectedFindingError, match="Pass --force to verify it again"):
        ops.verify(store, "bees", key, sources=sources, model=model, by="cli:ana")
