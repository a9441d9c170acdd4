"""The CLI's last line of defence: an error nobody designed still gets one line, no traceback."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from memshelf.cli._common import EXIT_BUG, EXIT_FAULT, explain_unexpected
from tests.faults._cli import memshelf
from tests.faults.conftest import USER

_BUG = "import memshelf.ops.memories as m; m.list_memories = lambda *a, **k: 1 / 0"


def test_a_bug_prints_one_line_asking_for_a_report(data: Path) -> None:
    result = memshelf("memories", "list", "--user", USER, data=data, code=_BUG)
    assert result.returncode == EXIT_BUG
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: unexpected ZeroDivisionError: division by zero.")
    assert "bug in memshelf" in result.stderr


def test_memshelf_debug_shows_the_traceback(data: Path) -> None:
    result = memshelf(
        "memories", "list", "--user", USER, data=data, code=_BUG, env={"MEMSHELF_DEBUG": "1"}
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ZeroDivisionError" in result.stderr


@pytest.mark.parametrize(
    ("exc", "code", "says"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/x/out.json"),
            EXIT_FAULT,
            "disk is full",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/x/out.json"),
            EXIT_FAULT,
            "/x/out.json",
        ),
        (sqlite3.OperationalError("database is locked"), EXIT_FAULT, "SQLite failed"),
        (KeyError("x"), EXIT_BUG, "bug in memshelf"),
    ],
)
def test_outside_faults_get_their_fix(
    exc: BaseException, code: int, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEMSHELF_DEBUG", raising=False)
    got_code, message = explain_unexpected(exc)
    assert got_code == code
    assert says in message


def test_a_dropped_redis_connection_is_a_fault_not_a_bug() -> None:
    import redis

    code, message = explain_unexpected(redis.ConnectionError("Connection reset by peer"))
    assert code == EXIT_FAULT
    assert "Lost the connection to Redis" in message
