"""`memshelf ask` in real separate processes: the restart test with the rule-based model."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli.helpers import run_cli


def _ask(data: Path, user: str, thread: str, message: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "ask",
        "--user",
        user,
        "--thread",
        thread,
        message,
        data=data,
        MEMSHELF_CHAT_MODEL="fake",
        MEMSHELF_EMBEDDINGS="fake:64",
    )


def test_each_turn_is_a_new_process_and_memory_survives(tmp_path: Path) -> None:
    first = _ask(tmp_path, "sukhveer", "A", "I deploy on Fly.io.")
    assert first.returncode == 0, first.stderr
    second = _ask(tmp_path, "sukhveer", "B", "Where do I deploy?")
    assert second.returncode == 0 and "Fly.io" in second.stdout
    other = _ask(tmp_path, "alex", "C", "Where do I deploy?")
    assert other.returncode == 0 and "Fly.io" not in other.stdout


def test_ask_without_user_is_a_clear_error(tmp_path: Path) -> None:
    result = _ask(tmp_path, "", "A", "hello")
    assert result.returncode == 2 and "user" in result.stderr.lower()


def test_oversized_message_is_a_clear_error(tmp_path: Path) -> None:
    result = _ask(tmp_path, "sukhveer", "A", "x" * 30_000)
    assert result.returncode == 2 and "MEMSHELF_MAX_MESSAGE_CHARS" in result.stderr


def test_chat_session_prints_replies_and_runs_commands(tmp_path: Path) -> None:
    import os
    import sys

    lines = [
        "I deploy on Fly.io.",
        "/thread new",
        "Where do I deploy?",
        "/memories",
        "/forget I deploy on Fly.io",
        "/memories",
        "/quit",
    ]
    script = "\n".join(lines) + "\n"
    env = {
        **os.environ,
        "MEMSHELF_DATA_DIR": str(tmp_path),
        "MEMSHELF_CHAT_MODEL": "fake",
        "MEMSHELF_EMBEDDINGS": "fake:64",
    }
    result = subprocess.run(
        [sys.executable, "-m", "memshelf.cli", "chat", "--user", "u"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'bot> From memory: "I deploy on Fly.io"' in out  # recalled in a new thread
    assert "  - I deploy on Fly.io" in out and "forgot: I deploy on Fly.io" in out
    assert out.count("  - I deploy on Fly.io") == 1  # gone after /forget
