"""Store-file faults through the real ``memshelf`` command: one clear line, nothing lost.

Each test injects one fault of README's "When things go wrong" table (its row
is ``fault(id)``), runs the command a user would, checks the message, then checks
with a fresh store that nothing was lost or changed.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from memshelf.stores._sqlite_schema import SCHEMA_VERSION
from tests.faults._cli import (
    as_plain_user,
    assert_clean_failure,
    file_size_limit,
    lines,
    memshelf,
)
from tests.faults.conftest import SEED, USER, texts_on, write_export
from tests.faults.registry import fault


@pytest.mark.parametrize(
    "command",
    [
        ["memories", "list", "--user", USER],
        ["ask", "--user", USER, "--model", "fake", "hello"],
        ["threads", "list", "--user", USER],
        ["doctor"],
        ["sweep"],
        ["serve", "--port", "0"],
    ],
    ids=lambda c: c[0] if c[0] != "memories" else "memories-list",
)
def test_a_file_that_is_not_a_database(tmp_path: Path, data: Path, command: list[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = path.read_bytes()
    result = memshelf(*command, data=data, env={"MEMSHELF_STORE_URL": str(path)}, timeout=120)
    if command[0] == "doctor":  # doctor prints what it can first, then the one error line
        result = subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr)
    assert_clean_failure(result, fault("sqlite-not-a-database"))
    assert str(path) in result.stderr
    assert path.read_bytes() == before


def test_another_programs_database_is_left_untouched(tmp_path: Path, data: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.close()
    before = path.read_bytes()
    result = memshelf(
        "memories", "add", "--user", USER, "I like tea", "--store", str(path), data=data
    )
    assert_clean_failure(result, fault("sqlite-other-program"))
    assert "invoices" in result.stderr
    assert path.read_bytes() == before


def test_a_store_from_a_newer_memshelf(seeded: Path, data: Path) -> None:
    with sqlite3.connect(seeded) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    result = memshelf("memories", "list", "--user", USER, "--store", str(seeded), data=data)
    assert_clean_failure(result, fault("sqlite-newer-schema"))
    with sqlite3.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] >= len(SEED)
    conn.close()


def _read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXUSR if path.is_dir() else 0))


@pytest.mark.parametrize("command", [["list"], ["add", "I like coffee"]])
def test_a_read_only_store_file(seeded: Path, data: Path, command: list[str]) -> None:
    _read_only(seeded)
    try:
        result = memshelf(
            "memories",
            *command,
            "--user",
            USER,
            "--store",
            str(seeded),
            data=data,
            preexec=as_plain_user,
        )
    finally:
        seeded.chmod(0o644)
    assert_clean_failure(result, fault("sqlite-read-only-file"))
    assert str(seeded) in result.stderr
    assert texts_on(str(seeded), data) == set(SEED)


def test_a_read_only_store_folder(seeded: Path, data: Path) -> None:
    folder = seeded.parent
    for extra in folder.glob("*-*"):  # a closed store leaves no -wal/-shm; make sure
        extra.unlink()
    _read_only(folder)
    try:
        result = memshelf(
            "memories",
            "add",
            "--user",
            USER,
            "I like coffee",
            "--store",
            str(seeded),
            data=data,
            preexec=as_plain_user,
        )
    finally:
        folder.chmod(0o755)
    assert_clean_failure(result, fault("sqlite-read-only-dir"))
    assert texts_on(str(seeded), data) == set(SEED)


def test_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    _read_only(parent)
    try:
        result = memshelf(
            "memories", "list", "--user", USER, data=parent / "data", preexec=as_plain_user
        )
    finally:
        parent.chmod(0o755)
    assert_clean_failure(result, fault("data-dir-unwritable"))
    assert str(parent / "data") in result.stderr
    assert not (parent / "data").exists()


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a folder")
    result = memshelf("memories", "list", "--user", USER, data=data)
    assert_clean_failure(result, fault("data-dir-is-a-file"))
    assert str(data) in result.stderr
    assert data.read_text() == "not a folder"


def test_a_store_url_naming_a_directory(tmp_path: Path, data: Path) -> None:
    result = memshelf("memories", "list", "--user", USER, "--store", str(tmp_path), data=data)
    assert_clean_failure(result, fault("store-is-a-directory"))


def test_a_full_disk_mid_import_writes_nothing_and_the_file_stays_usable(
    seeded: Path, data: Path, tmp_path: Path
) -> None:
    big = write_export(
        tmp_path / "big.json", [f"I collect stamps from country {i}" for i in range(3000)]
    )
    limit = seeded.stat().st_size + 64 * 1024
    result = memshelf(
        "memories",
        "import",
        "--user",
        USER,
        str(big),
        "--store",
        str(seeded),
        data=data,
        preexec=file_size_limit(limit),
    )
    assert_clean_failure(result, fault("disk-full-mid-batch"))
    assert str(seeded) in result.stderr
    assert texts_on(str(seeded), data) == set(SEED)  # all or nothing: none of the 3000
    with sqlite3.connect(seeded) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    added = memshelf(
        "memories", "add", "--user", USER, "I like coffee", "--store", str(seeded), data=data
    )
    assert len(lines(added)) == 1
    assert texts_on(str(seeded), data) == {*SEED, "I like coffee"}


def test_two_cli_processes_import_onto_one_shelf_at_once(
    seeded: Path, data: Path, tmp_path: Path
) -> None:
    import sys

    files = [
        write_export(
            tmp_path / f"part{n}.json", [f"I visited city {n}-{i}" for i in range(150)], f"p{n}-"
        )
        for n in range(2)
    ]
    env = {**os.environ, "MEMSHELF_DATA_DIR": str(data), "MEMSHELF_EMBEDDINGS": "fake"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "memshelf.cli",
                "memories",
                "import",
                "--user",
                USER,
                str(f),
                "--store",
                str(seeded),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert out.strip() == "imported 150 facts"
    expected = {*SEED, *(f"I visited city {n}-{i}" for n in range(2) for i in range(150))}
    assert texts_on(str(seeded), data) == expected
    fault("two-cli-writers")


def test_an_export_into_a_read_only_folder(seeded: Path, data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _read_only(folder)
    try:
        result = memshelf(
            "memories", "export", "--user", USER, "--store", str(seeded),
            "--out", str(folder / "shelf.json"), data=data, preexec=as_plain_user,
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert_clean_failure(result, fault("export-unwritable"))
    assert str(folder / "shelf.json") in result.stderr
    assert texts_on(str(seeded), data) == set(SEED)
