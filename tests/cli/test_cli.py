"""The console script, run as users run it: a real subprocess on a real data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli

pytestmark = pytest.mark.real_model


def test_doctor_hashes_the_url_and_never_prints_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/secret-name.db"
    result = run_cli("doctor", data=tmp_path, MEMSHELF_STORE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "sha256:" in result.stdout and url not in result.stdout
    assert "local:all-MiniLM-L6-v2" in result.stdout
    assert "embedder check  ok" in result.stdout


def test_memories_commands_round_trip(tmp_path: Path) -> None:
    for fact in ["Sukhveer deploys on Fly.io", "Sukhveer prefers answers with code"]:
        assert run_cli("memories", "add", "--user", "sukhveer", fact, data=tmp_path).returncode == 0
    assert (
        run_cli("memories", "add", "--user", "alex", "Alex uses AWS", data=tmp_path).returncode == 0
    )
    listed = run_cli("memories", "list", "--user", "sukhveer", data=tmp_path).stdout
    assert "Fly.io" in listed and "AWS" not in listed
    found = run_cli("memories", "search", "--user", "sukhveer", "where do I deploy", data=tmp_path)
    assert found.stdout.splitlines()[0].endswith("Sukhveer deploys on Fly.io")
    exported = run_cli("memories", "export", "--user", "sukhveer", data=tmp_path)
    records = json.loads(exported.stdout)
    assert {r["value"]["text"] for r in records} == {
        "Sukhveer deploys on Fly.io",
        "Sukhveer prefers answers with code",
    }
    dump = tmp_path / "export.json"
    dump.write_text(exported.stdout)
    imported = run_cli("memories", "import", "--user", "copy", str(dump), data=tmp_path)
    assert "imported 2 facts" in imported.stdout
    gone = run_cli("memories", "forget", "--user", "sukhveer", "that I use Fly.io", data=tmp_path)
    assert gone.returncode == 0 and "Fly.io" in gone.stdout
    listed = run_cli("memories", "list", "--user", "sukhveer", data=tmp_path).stdout
    assert "Fly.io" not in listed and "code" in listed
    assert "Fly.io" in run_cli("memories", "list", "--user", "copy", data=tmp_path).stdout


def test_changed_embedder_error_then_reembed(tmp_path: Path) -> None:
    add = ("memories", "add", "--user", "u", "Sukhveer deploys on Fly.io")
    assert run_cli(*add, data=tmp_path, MEMSHELF_EMBEDDINGS="fake:32").returncode == 0
    result = run_cli("memories", "search", "--user", "u", "deploy", data=tmp_path)
    assert result.returncode == 2
    assert "memshelf reembed" in result.stderr and "fake:hashed-words:32" in result.stderr
    result = run_cli("reembed", data=tmp_path)
    assert result.returncode == 0 and "re-embedded 1 items" in result.stdout
    result = run_cli("memories", "search", "--user", "u", "where do I deploy", data=tmp_path)
    assert result.returncode == 0 and "Fly.io" in result.stdout


def test_bad_store_url_is_a_friendly_error(tmp_path: Path) -> None:
    result = run_cli("sweep", "--store", "postgres://x", data=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Unknown store URL scheme")


def test_missing_user_id_is_a_friendly_error(tmp_path: Path) -> None:
    result = run_cli("memories", "add", "--user", "  ", "x", data=tmp_path)
    assert result.returncode == 2 and "user id" in result.stderr
