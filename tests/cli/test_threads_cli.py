"""The thread leak, repeated through the real command: two users, one thread name.

Every command that takes a thread is exercised here, and
``test_every_thread_entry_point_is_covered`` fails when a new one appears that
this file does not exercise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli

SECRET = "My bank PIN hint is blue falcon. Keep it safe."
PROBE = "What did I just tell you about my PIN hint?"
FAKE = {"MEMSHELF_CHAT_MODEL": "fake", "MEMSHELF_EMBEDDINGS": "fake:64"}


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield dict(FAKE)
        return
    from memshelf.stores.redis import connect, drop_prefix

    url = request.getfixturevalue("redis_url")
    prefix = "cli" + uuid.uuid4().hex[:8]
    yield {**FAKE, "MEMSHELF_STORE_URL": url, "MEMSHELF_REDIS_PREFIX": prefix}
    client = connect(url)
    drop_prefix(client, prefix)
    client.close()


def _cli(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, data=data, **env)


def test_ask_and_threads_commands_keep_users_apart(tmp_path: Path, backend: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:6]  # RedisSaver's keys are global in the shared test server
    alice, mallory = f"alice-{run}", f"mallory-{run}"
    told = _cli(tmp_path, backend, "ask", "--user", alice, SECRET)  # the default thread
    assert told.returncode == 0, told.stderr
    asked = _cli(tmp_path, backend, "ask", "--user", mallory, PROBE)
    assert asked.returncode == 0, asked.stderr
    assert "falcon" not in asked.stdout and "Earlier here" not in asked.stdout
    explicit = _cli(tmp_path, backend, "ask", "--user", mallory, "--thread", "default", PROBE)
    assert "falcon" not in explicit.stdout

    mine = _cli(tmp_path, backend, "threads", "show", "--user", alice, "default")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.count("you> ") == 1 and "blue falcon" in mine.stdout  # unchanged
    theirs = _cli(tmp_path, backend, "threads", "show", "--user", mallory, "default")
    assert "falcon" not in theirs.stdout and theirs.stdout.count("you> ") == 2
    listed = _cli(tmp_path, backend, "threads", "list", "--user", mallory)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["default"]

    # alice's private thread looks exactly like one that does not exist
    _cli(tmp_path, backend, "ask", "--user", alice, "--thread", "vault", SECRET)
    other = _cli(tmp_path, backend, "threads", "show", "--user", mallory, "vault")
    missing = _cli(tmp_path, backend, "threads", "show", "--user", mallory, "no-such")
    assert other.returncode == missing.returncode == 2
    assert other.stderr.replace("vault", "X") == missing.stderr.replace("no-such", "X")
    gone = _cli(tmp_path, backend, "threads", "delete", "--user", mallory, "vault")
    assert gone.returncode == 2 and "has no thread" in gone.stderr
    kept = _cli(tmp_path, backend, "threads", "show", "--user", alice, "vault")
    assert "blue falcon" in kept.stdout
    deleted = _cli(tmp_path, backend, "threads", "delete", "--user", alice, "vault")
    assert deleted.returncode == 0, deleted.stderr
    listed = _cli(tmp_path, backend, "threads", "list", "--user", alice)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["default"]


def test_chat_in_another_users_thread_sees_nothing(tmp_path: Path) -> None:
    told = _cli(tmp_path, FAKE, "ask", "--user", "alice", "--thread", "shared", SECRET)
    assert told.returncode == 0, told.stderr
    result = subprocess.run(
        [sys.executable, "-m", "memshelf.cli", "chat", "--user", "mallory", "--thread", "shared"],
        input=PROBE + "\n/quit\n",
        capture_output=True,
        text=True,
        env={**os.environ, "MEMSHELF_DATA_DIR": str(tmp_path), **FAKE},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bot> " in result.stdout and "falcon" not in result.stdout


# Every command that takes a thread, and the test above that checks it across users.
def test_team_ask_threads_are_per_user_and_per_team(
    tmp_path: Path, backend: dict[str, str]
) -> None:
    """bob's `team ask --thread c` in alice's team never continues alice's thread c; and
    team ``a:b`` + thread ``c`` is not team ``a`` + thread ``b:c`` (the team id is encoded)."""
    run = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{run}", f"bob-{run}"
    told = _cli(
        tmp_path, backend, "team", "ask", "--team", "a:b", "--user", alice, "-t", "c", SECRET
    )
    assert told.returncode == 0, told.stderr
    asked = _cli(tmp_path, backend, "team", "ask", "--team", "a:b", "--user", bob, "-t", "c", PROBE)
    assert asked.returncode == 0, asked.stderr
    assert "falcon" not in asked.stdout
    theirs = _cli(tmp_path, backend, "threads", "list", "--user", bob)
    (bobs,) = [line.split("\t")[0] for line in theirs.stdout.splitlines()]
    shown = _cli(tmp_path, backend, "threads", "show", "--user", bob, bobs)
    assert shown.returncode == 0, shown.stderr
    assert "falcon" not in shown.stdout and shown.stdout.count("you> ") == 1

    other = _cli(
        tmp_path, backend, "team", "ask", "--team", "a", "--user", alice, "-t", "b:c", PROBE
    )
    assert other.returncode == 0, other.stderr
    listed = _cli(tmp_path, backend, "threads", "list", "--user", alice)
    mine = sorted(line.split("\t")[0] for line in listed.stdout.splitlines())
    assert len(mine) == 2, mine  # two teams' threads, not one shared by both
    for thread in mine:
        transcript = _cli(tmp_path, backend, "threads", "show", "--user", alice, thread).stdout
        assert transcript.count("you> ") == 1, (thread, transcript)


THREAD_COMMANDS = {
    "ask": "test_ask_and_threads_commands_keep_users_apart",
    "chat": "test_chat_in_another_users_thread_sees_nothing",
    "team ask": "test_team_ask_threads_are_per_user_and_per_team",
    "threads show": "test_ask_and_threads_commands_keep_users_apart",
    "threads delete": "test_ask_and_threads_commands_keep_users_apart",
}


def test_every_thread_entry_point_is_covered() -> None:
    import typer

    from memshelf.cli import app

    found: set[str] = set()

    def walk(command: Any, path: str) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())
        elif any("thread" in (p.name or "") for p in command.params):
            found.add(path)

    walk(typer.main.get_command(app), "")
    assert found == set(THREAD_COMMANDS), (
        "A command that takes a thread was added or removed: check it against another "
        "user's thread in this file and list it in THREAD_COMMANDS."
    )
    for test in THREAD_COMMANDS.values():
        assert test in globals()
