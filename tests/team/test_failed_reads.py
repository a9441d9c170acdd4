"""A source that never answers cannot keep a claim alive (issue 14's review): failed
reads in a row are counted in the finding's history, a read resets the count, and the
third in a row rejects the finding. A failure of the reader's own settings (a missing
notes folder) is not counted; a note deleted from an existing folder rejects like a 404.
Real sockets on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.ops import findings as ops
from memshelf.team.findings import failed_reads, finding_history, get_finding
from memshelf.team.sources import Sources
from memshelf.team.verify import verify_finding
from tests.team._quoted import QUOTE, TEAM, propose_quote, verified_quote


def test_three_failed_reads_in_a_row_reject_and_a_read_resets_the_count(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with verified_quote(store, model, tmp_path) as (origin, page, sources, key):
        page.status = 503
        for tried in (1, 2):  # 503, 503: kept, and the message counts down
            with pytest.raises(ops.SourceUnreachableError) as raised:
                ops.verify(store, TEAM, key, sources=sources, model=model, by="cli:ana")
            assert f"{tried} of 3 failed reads in a row; after {3 - tried} more" in str(
                raised.value
            )
            assert get_finding(store, TEAM, key).value["status"] == "verified"
        page.status = 200  # read again: the count starts over
        assert verify_finding(store, TEAM, key, sources, model).ok
        assert failed_reads(store, TEAM, key) == 0
        page.status = 429
        for tried in (1, 2):
            verdict = verify_finding(store, TEAM, key, sources, model)
            assert verdict.unreachable and verdict.failed_reads == tried
        verdict = verify_finding(store, TEAM, key, sources, model, by="cli:ana")
    assert not verdict.ok and verdict.unreachable is None
    assert verdict.why == (
        f"its source could not be read on 3 verifications in a row "
        f"(last: {origin}/page answered HTTP 429)"
    )
    value = get_finding(store, TEAM, key).value
    assert value["status"] == "rejected" and value["decision"]["why"] == verdict.why
    ops_seen = [e["op"] for e in finding_history(store, TEAM, key)]
    failed = ["verify-failed"]
    assert ops_seen == ["propose", "verify", *failed * 2, "verify", *failed * 3, "reject"]


def test_a_missing_notes_folder_is_never_counted(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "log.md").write_text(f"{QUOTE}\n")
    settings = Settings(data_dir=tmp_path / "d")
    key = propose_quote(store, Sources.create(settings, notes_dir=notes), "note:log.md")
    moved = Sources.create(settings, notes_dir=tmp_path / "moved-away")
    for _ in range(4):
        with pytest.raises(ops.SourceUnreachableError, match="--notes") as raised:
            ops.verify(store, TEAM, key, sources=moved, model=model, by="cli:ana")
        assert "failed reads" not in str(raised.value)
    assert get_finding(store, TEAM, key).value["status"] == "proposed"
    assert failed_reads(store, TEAM, key) == 0


def test_a_deleted_note_rejects_like_a_404(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "log.md").write_text(f"{QUOTE}\n")
    sources = Sources.create(Settings(data_dir=tmp_path / "d"), notes_dir=notes)
    key = propose_quote(store, sources, "note:log.md")
    assert verify_finding(store, TEAM, key, sources, model).ok
    (notes / "log.md").unlink()  # the folder is there; the note is gone
    verdict = ops.verify(store, TEAM, key, sources=sources, model=model, by="cli:ana")
    assert not verdict.ok and "does not exist" in verdict.why
    assert get_finding(store, TEAM, key).value["status"] == "rejected"
