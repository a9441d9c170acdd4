"""What a new user met first (issue 17): a damaged store or a mistyped store URL answered
"nothing found", an export to a missing folder was called a bug, `models list` called a
truncated model "installed", Redis errors hid the server, data-dir errors hid the setting.

Each is run through the real ``memshelf`` command: one ``error:`` line naming the problem
and the fix, exit code 2, no traceback, and nothing lost.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest

from memshelf.config import Settings, display_url
from memshelf.llm.install import GGUF_MAGIC, model_state
from memshelf.llm.registry import LocalModel, local_model
from tests.faults._cli import as_plain_user, assert_clean_failure, lines, memshelf
from tests.faults.conftest import SEED, USER, texts_on
from tests.faults.registry import fault

# Every command on a user's memories and threads, each needing a store that exists.
_ON_A_STORE = {
    "memories-list": ["memories", "list", "--user", USER],
    "memories-search": ["memories", "search", "--user", USER, "tea"],
    "memories-export": ["memories", "export", "--user", USER],
    "memories-history": ["memories", "history", "--user", USER, "k00000"],
    "memories-forget": ["memories", "forget", "--user", USER, "tea"],
    "memories-edit": ["memories", "edit", "--user", USER, "k00000", "I like black tea"],
    "memories-restore": ["memories", "restore", "--user", USER, "k00000", "1"],
    "memories-add": ["memories", "add", "--user", USER, "I like coffee"],
    "memories-import": ["memories", "import", "--user", USER, "EXPORT"],
    "threads-list": ["threads", "list", "--user", USER],
    "threads-show": ["threads", "show", "--user", USER, "t1"],
    "threads-delete": ["threads", "delete", "--user", USER, "t1"],
}


def _run_on(command: list[str], store: Path, data: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    export = tmp_path / "in.json"
    export.write_text('[{"key": "n1", "value": {"text": "I like tea"}}]', encoding="utf-8")
    args = [str(export) if a == "EXPORT" else a for a in command]
    return memshelf(*args, "--store", f"sqlite://{store}", data=data, timeout=120)


def _damage(path: Path) -> None:
    """Overwrite the first page of the vectors table and of the items' (namespace, key)
    index, as a bad disk sector or a half-copied file does. The header still says SQLite,
    and the rows `memories list` reads are intact: before the check on open, list, export
    and history answered from them (exit 0) while the store was broken underneath."""
    names = ("vectors", "sqlite_autoindex_items_1")
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (n,)).fetchone()[0]
            for n in names
        ]
    conn.close()
    with path.open("r+b") as fh:
        for root in roots:
            fh.seek((root - 1) * page)
            fh.write(b"\xde\xad" * (page // 2))


@pytest.mark.parametrize("name", list(_ON_A_STORE))
def test_every_memories_and_threads_command_refuses_a_damaged_store(
    seeded: Path, data: Path, tmp_path: Path, name: str
) -> None:
    _damage(seeded)
    before = seeded.read_bytes()
    result = _run_on(_ON_A_STORE[name], seeded, data, tmp_path)
    assert_clean_failure(result, fault("sqlite-damaged-tables"))
    assert str(seeded) in result.stderr
    assert seeded.read_bytes() == before


@pytest.mark.parametrize(
    "name",
    ["memories-search", "memories-export", "memories-forget", "memories-import", "threads-show"],
)
def test_commands_on_a_file_that_is_not_a_database(tmp_path: Path, data: Path, name: str) -> None:
    path = tmp_path / "corrupted.db"
    path.write_bytes(bytes(range(256)) * 64)
    result = _run_on(_ON_A_STORE[name], path, data, tmp_path)
    assert_clean_failure(result, fault("sqlite-not-a-database"))
    assert str(path) in result.stderr
    assert path.read_bytes() == bytes(range(256)) * 64


def test_sqlite_url_meant_for_a_file_in_this_folder(seeded: Path, data: Path) -> None:
    """``sqlite:///shelf.db`` is /shelf.db; with ./shelf.db here that is a slip, and it used
    to open a new empty store at the root and print nothing (exit 0)."""
    name = f"memshelf-{uuid.uuid4().hex}.db"
    here = seeded.parent / name
    seeded.rename(here)
    for command in (
        ["memories", "search", "--user", USER, "tea"],
        ["memories", "add", "--user", USER, "x"],
    ):
        result = memshelf(*command, "--store", f"sqlite:///{name}", data=data, cwd=here.parent)
        assert_clean_failure(result, fault("sqlite-url-relative-path"))
        assert f"/{name}" in result.stderr and f"--store {here}" in result.stderr
    assert not Path(f"/{name}").exists()
    assert texts_on(str(here), data) == set(SEED)


@pytest.mark.parametrize("command", [["memories", "list"], ["threads", "list"]])
def test_reading_a_store_file_that_does_not_exist(
    tmp_path: Path, data: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    result = memshelf(*command, "--user", USER, "--store", str(missing), data=data)
    assert_clean_failure(result, fault("store-file-missing"))
    assert str(missing) in result.stderr
    assert not missing.exists()


@pytest.mark.parametrize(
    "command",
    [["memories", "list", "--user", USER], ["threads", "list", "--user", USER], ["doctor"]],
)
def test_reading_a_store_file_truncated_to_nothing(
    tmp_path: Path, data: Path, command: list[str]
) -> None:
    """SQLite takes a 0-byte file for a new database: a read used to print nothing (exit
    0) and write a fresh schema into the file a user may mean to restore."""
    empty = tmp_path / "shelf.db"
    empty.write_bytes(b"")
    result = memshelf(*command, "--store", str(empty), data=data)
    assert_clean_failure(result, fault("store-file-empty"))
    assert str(empty) in result.stderr
    assert empty.stat().st_size == 0


@pytest.mark.parametrize("command", [["ask", "--user", USER, "--model", "fake", "hi"], ["doctor"]])
def test_ask_and_doctor_catch_the_sqlite_url_slip(
    seeded: Path, data: Path, command: list[str]
) -> None:
    """`ask` and `doctor` opened (and created) /shelf.db for `sqlite:///shelf.db`."""
    name = f"memshelf-{uuid.uuid4().hex}.db"
    here = seeded.parent / name
    seeded.rename(here)
    result = memshelf(*command, "--store", f"sqlite:///{name}", data=data, cwd=here.parent)
    assert_clean_failure(result, fault("sqlite-url-relative-path"))
    assert not Path(f"/{name}").exists()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret-pw@127.0.0.1:notaport/0",
        # a raw "/" in the password: the parser takes "s3cret-pw" for the port and says so
        "redis://:s3cret-pw/xyz@127.0.0.1:6379/0",
    ],
)
def test_a_redis_url_that_cannot_be_read(data: Path, url: str) -> None:
    result = memshelf("memories", "list", "--user", USER, "--store", url, data=data)
    assert_clean_failure(result, fault("redis-url-unreadable"))
    assert "s3cret" not in result.stderr


def test_an_empty_data_dir_setting(tmp_path: Path) -> None:
    result = memshelf(
        "memories", "list", "--user", USER, data=None, env={"MEMSHELF_DATA_DIR": ""}, cwd=tmp_path
    )
    assert_clean_failure(result, fault("data-dir-empty"))
    assert list(tmp_path.iterdir()) == []


# --- memories export --out ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing-folder", "a-directory", "under-a-file"])
def test_export_to_a_path_that_cannot_be_written(
    seeded: Path, data: Path, tmp_path: Path, where: str
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out, says = {
        "missing-folder": (
            tmp_path / "missing" / "shelf.json",
            f"folder {tmp_path / 'missing'} does not exist. Create it",
        ),
        "a-directory": (tmp_path, "it is a directory"),
        "under-a-file": (tmp_path / "notes.txt" / "shelf.json", "is a file, not a folder"),
    }[where]
    result = memshelf(
        "memories", "export", "--user", USER, "--store", str(seeded), "--out", str(out), data=data
    )
    assert_clean_failure(result, fault("export-bad-path"))
    assert f"cannot write {out}: " in result.stderr and says in result.stderr
    assert "choose another path" in result.stderr.lower()
    assert texts_on(str(seeded), data) == set(SEED)
    assert not (tmp_path / "missing").exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert list(tmp_path.glob(".*.tmp")) == []


# The export hits a 1 KB file size limit (as a full disk would) once the store is closed.
_FULL_DISK_AT_EXPORT = """
import resource
import memshelf.cli.memories as memories
_write = memories.write_output
def _limited(path, text):
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
    return _write(path, text)
memories.write_output = _limited
"""


def test_a_failed_export_keeps_the_earlier_file(seeded: Path, data: Path, tmp_path: Path) -> None:
    """The export is written beside the target and renamed over it: when the disk fills up
    half-way, the earlier export is kept whole and no partial file is left."""
    out = tmp_path / "shelf.json"
    earlier = memshelf(
        "memories", "export", "--user", USER, "--store", str(seeded), "--out", str(out), data=data
    )
    assert earlier.returncode == 0, earlier.stderr
    before = out.read_bytes()
    assert len(before) > 1024
    result = memshelf(
        "memories", "export", "--user", USER, "--store", str(seeded), "--out", str(out),
        data=data, code=_FULL_DISK_AT_EXPORT,
    )  # fmt: skip
    assert_clean_failure(result, fault("export-disk-full"))
    assert f"cannot write {out}: the disk is full" in result.stderr
    assert out.read_bytes() == before
    assert list(tmp_path.glob(".*.tmp")) == []


def test_an_export_over_a_writable_file_in_a_read_only_folder(
    seeded: Path, data: Path, tmp_path: Path
) -> None:
    """No temp file fits in a read-only folder; an existing writable export is rewritten in
    place, as before."""
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "shelf.json"
    out.write_text("[]\n")
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = memshelf(
            "memories", "export", "--user", USER, "--store", str(seeded), "--out", str(out),
            data=data, preexec=as_plain_user,
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "I like green tea" in out.read_text()


# --- models -------------------------------------------------------------------------------

SMALL = "qwen2.5-coder-0.5b"


def test_models_list_and_doctor_call_a_truncated_gguf_damaged(data: Path, tmp_path: Path) -> None:
    model = local_model(SMALL)
    models = tmp_path / "models"
    models.mkdir()
    (models / model.filename).write_bytes(GGUF_MAGIC + b"\0" * 4096)
    env = {"MEMSHELF_MODELS_DIR": str(models), "MEMSHELF_CHAT_MODEL": f"local:{SMALL}"}
    listed = [
        line for line in lines(memshelf("models", "list", data=data, env=env)) if SMALL in line
    ]
    assert listed and "  installed" not in listed[0]
    assert (
        f"damaged (size 4,100 of {model.size_bytes:,} bytes): run "
        f"`memshelf models install --force {SMALL}`"
    ) in listed[0]
    doctor = memshelf("doctor", data=data, env=env)
    stdout = doctor.stdout
    doctor.stdout = ""  # doctor prints what it checked first, then the one error line
    assert_clean_failure(doctor, fault("gguf-damaged-listed"))
    assert f"local:{SMALL}  damaged (size 4,100" in stdout
    assert f"memshelf models install --force {SMALL}" in doctor.stderr


def _tiny_model(content: bytes) -> LocalModel:
    return LocalModel(
        name="tiny",
        filename="tiny.gguf",
        package_prefix="none",
        parts=1,
        version="0",
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        about="test",
    )


def test_model_state_hashes_once_then_trusts_size_and_mtime(tmp_path: Path) -> None:
    """`models list` checks sizes always and hashes only with --verify; a verified file
    keeps its verdict until its size or mtime changes."""
    good = GGUF_MAGIC + b"weights" * 1000
    model = _tiny_model(good)
    assert model_state(model, tmp_path).state == "not installed"
    path = tmp_path / model.filename
    path.write_bytes(good)
    assert model_state(model, tmp_path).state == "unverified"
    assert str(model_state(model, tmp_path, full=True)) == "installed (verified)"
    assert str(model_state(model, tmp_path)) == "installed (verified)"  # from the stamp
    path.write_bytes(GGUF_MAGIC + b"WEIGHTS" * 1000)  # same size, other bytes, new mtime
    later = path.stat().st_mtime_ns + 2_000_000_000  # (a coarse clock may not have moved)
    os.utime(path, ns=(later, later))
    assert model_state(model, tmp_path).state == "unverified"
    replaced = model_state(model, tmp_path, full=True)
    assert replaced.state == "damaged" and "sha256" in replaced.detail
    assert replaced.fix == "memshelf models install --force tiny"
    path.write_bytes(good[:100])
    assert str(model_state(model, tmp_path)).startswith(f"damaged (size 100 of {len(good):,}")


# --- Redis URLs in messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:hunter2@db.example:6380/0", "redis://:***@db.example:6380/0"),
        ("rediss://bob:hunter2@db.example:6380/0", "rediss://***:***@db.example:6380/0"),
        ("redis://bob@db.example/0", "redis://***@db.example/0"),
        ("redis://[::1]:6379/0?password=hunter2", "redis://[::1]:6379/0"),
    ],
)
def test_display_url_shows_the_server_never_the_secret(url: str, shown: str) -> None:
    assert display_url(url) == shown
    assert "hunter2" not in display_url(url) and "bob" not in display_url(url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_names_host_port_and_db_not_the_password(data: Path) -> None:
    pytest.importorskip("redis")
    port = _closed_port()
    url = f"redis://bob:hunter2@127.0.0.1:{port}/0"
    result = memshelf("memories", "list", "--user", USER, "--store", url, data=data, timeout=120)
    assert_clean_failure(result, fault("redis-unreachable-named"))
    assert f"redis://***:***@127.0.0.1:{port}/0" in result.stderr
    assert "hunter2" not in result.stderr and "bob" not in result.stderr


# --- the data folder ------------------------------------------------------------------------


def _read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IXUSR)


def test_an_unwritable_data_dir_names_memshelf_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _read_only(data)
    try:
        result = memshelf("memories", "list", "--user", USER, data=data, preexec=as_plain_user)
    finally:
        data.chmod(0o755)
    assert_clean_failure(result, fault("data-dir-unwritable"))
    assert f"{data} (set by MEMSHELF_DATA_DIR)" in result.stderr


def test_an_unwritable_default_data_dir_says_it_is_the_default(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    _read_only(share)
    env = {"XDG_DATA_HOME": str(share), "HOME": str(tmp_path)}
    try:
        result = memshelf(
            "threads", "list", "--user", USER, data=None, env=env, preexec=as_plain_user
        )
    finally:
        share.chmod(0o755)
    assert_clean_failure(result, fault("default-data-dir-unwritable"))
    assert f"{share / 'memshelf'} (the default data folder" in result.stderr
    assert "set MEMSHELF_DATA_DIR to a writable folder" in result.stderr
    assert not (share / "memshelf").exists()


def test_ensure_data_dir_origin_in_process(tmp_path: Path) -> None:
    from memshelf.config import data_dir_origin

    assert data_dir_origin(Settings(data_dir=tmp_path)) == "set by MEMSHELF_DATA_DIR"
