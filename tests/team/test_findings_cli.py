"""``memshelf findings`` and ``memshelf team`` as users run them: a real subprocess on a
real SQLite file, with the fake embedder (the commands are thin edges over ops/findings)."""

from __future__ import annotations

import json
from pathlib import Path

from memshelf.config import Settings
from memshelf.stores import open_store
from memshelf.team.findings import Evidence, content_sha256, decide, propose
from tests.cli.helpers import run_cli

ENV = {"MEMSHELF_EMBEDDINGS": "fake:64"}


def test_list_show_reject_forget(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, embeddings="fake:64")
    claim = "Drones are the male honeybees and they have no stinger."
    with open_store(settings=settings) as store:
        ev = Evidence("http://example.org/drones", claim, content_sha256(claim), "now")
        key = propose(store, "bees", claim, ev, author="researcher")
        decide(store, "bees", key, "verified", by="verifier", why="quote found (exact)")

    listed = run_cli("findings", "list", "--team", "bees", "--json", data=data, **ENV)
    assert listed.returncode == 0, listed.stderr
    row = json.loads(listed.stdout.splitlines()[0])
    assert row["key"] == key and row["status"] == "verified" and row["author"] == "researcher"
    other = run_cli("findings", "list", "--team", "wasps", data=data, **ENV)
    assert other.returncode == 0 and other.stdout == ""

    shown = run_cli("findings", "show", "--team", "bees", key, data=data, **ENV)
    assert "propose" in shown.stdout and "verify    by verifier" in shown.stdout

    rejected = run_cli(
        "findings", "reject", "--team", "bees", key, "--why", "old page", data=data, **ENV
    )
    assert rejected.returncode == 0 and "rejected" in rejected.stdout
    assert (
        run_cli(
            "findings", "list", "--team", "bees", "--status", "verified", data=data, **ENV
        ).stdout
        == ""
    )

    elsewhere = run_cli("findings", "forget", "--team", "wasps", key, data=data, **ENV)
    assert elsewhere.returncode == 2 and "has no finding" in elsewhere.stderr
    assert run_cli("findings", "forget", "--team", "bees", key, data=data, **ENV).returncode == 0
    assert run_cli("findings", "list", "--team", "bees", data=data, **ENV).stdout == ""


def test_bad_input_names_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad_status = run_cli(
        "findings", "list", "--team", "bees", "--status", "maybe", data=data, **ENV
    )
    assert bad_status.returncode == 2 and "Unknown status" in bad_status.stderr
    bad_origin = run_cli(
        "team",
        "ask",
        "--team",
        "bees",
        "--model",
        "fake",
        "--allow-local-origin",
        "http://10.1.2.3:80",
        "hello",
        data=data,
        **ENV,
    )
    assert bad_origin.returncode == 2 and "loopback origin" in bad_origin.stderr
