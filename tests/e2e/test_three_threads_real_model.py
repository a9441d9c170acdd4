"""THE acceptance test: fact in thread A, recalled in thread B, after a restart in thread C,
and never for another user — with the real local chat model, embedder and SQLite files.

This is exactly what `make demo` runs (`memshelf demo`), in a fresh data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memshelf.config import display_url

pytestmark = [pytest.mark.real_model, pytest.mark.real_llm]


def _passing_demo(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `memshelf demo` in a new process and check that every step passed."""
    result = subprocess.run(
        [sys.executable, "-m", "memshelf.cli", "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "MEMSHELF_DATA_DIR": str(data_dir), **env},
        timeout=900,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for step in ("[1 thread A] ok", "[2 thread B] ok", "[3 thread C] ok", "[4 other user] ok"):
        assert step in out, out
    assert "demo passed" in out
    return result


def test_three_threads_restart_and_isolation_with_real_model(tmp_path: Path) -> None:
    _passing_demo(tmp_path)
    assert (tmp_path / "memshelf.db").is_file() and (tmp_path / "checkpoints.db").is_file()


def test_three_threads_on_redis_with_real_model(tmp_path: Path, redis_url: str) -> None:
    """The same acceptance run with MEMSHELF_STORE_URL=redis://…: store and threads in Redis."""
    result = _passing_demo(tmp_path, MEMSHELF_STORE_URL=redis_url, MEMSHELF_REDIS_PREFIX="e2e")
    # the server is named (host, port, db); a password would show as *** (tests/faults)
    assert f"store redis {display_url(redis_url)}, key prefix 'e2e'" in result.stdout
    assert not (tmp_path / "memshelf.db").exists() and not (tmp_path / "checkpoints.db").exists()
