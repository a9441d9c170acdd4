"""The history commands through the real console script: list --all, history, restore,
edit, forget --dry-run, and an export that carries history."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import run_cli

FAKE = {"MEMSHELF_CHAT_MODEL": "fake", "MEMSHELF_EMBEDDINGS": "fake:64"}


def _run(data: Path, *args: str) -> str:
    result = run_cli(*args, data=data, **FAKE)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_supersede_history_restore_and_export(tmp_path: Path) -> None:
    _run(tmp_path, "ask", "--user", "u", "--thread", "a", "I live in Berlin.")
    _run(tmp_path, "ask", "--user", "u", "--thread", "b", "I moved from Berlin to Lisbon.")
    current = _run(tmp_path, "memories", "list", "--user", "u")
    assert "Lisbon" in current and "live in Berlin" not in current
    everything = _run(tmp_path, "memories", "list", "--user", "u", "--all")
    old_key = next(line.split()[0] for line in everything.splitlines() if "live in" in line)
    assert "superseded by" in everything
    events = _run(tmp_path, "memories", "history", "--user", "u", old_key)
    assert " add " in events and " supersede " in events and "thread a" in events
    _run(tmp_path, "memories", "restore", "--user", "u", old_key, "1")
    assert "live in Berlin" in _run(tmp_path, "memories", "list", "--user", "u")
    _run(tmp_path, "memories", "edit", "--user", "u", old_key, "I lived in Berlin until 2025")
    exported = json.loads(_run(tmp_path, "memories", "export", "--user", "u"))
    ops = {e["op"] for r in exported for e in r["history"]}
    assert {"add", "supersede", "restore", "edit"} <= ops
    preview = _run(tmp_path, "memories", "forget", "--user", "u", "--dry-run", "Lisbon")
    assert preview.startswith("would forget:")
    assert "Lisbon" in _run(tmp_path, "memories", "list", "--user", "u")
    missing = run_cli("memories", "history", "--user", "other", old_key, data=tmp_path, **FAKE)
    assert missing.returncode == 2 and "has no memory" in missing.stderr
