"""The console script, run as users run it: a real subprocess on a real data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model


def _run(*args: str, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "MEMSHELF_DATA_DIR": str(data), **env}
    return subprocess.run(
        [sys.executable, "-m", "memshelf.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


def test_demo_passes_in_two_processes(tmp_path: Path) -> None:
    result = _run("demo", data=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo passed" in result.stdout
    assert result.stdout.count(" ok ") + result.stdout.count(" ok  ") >= 5
    assert (tmp_path / "memshelf.db").is_file()


def test_doctor_hashes_the_url_and_never_prints_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/secret-name.db"
    result = _run("doctor", data=tmp_path, MEMSHELF_STORE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "sha256:" in result.stdout and url not in result.stdout
    assert "local:all-MiniLM-L6-v2" in result.stdout
    assert "embedder check  ok" in result.stdout


def test_changed_embedder_error_then_reembed(tmp_path: Path) -> None:
    assert _run("demo", data=tmp_path, MEMSHELF_EMBEDDINGS="fake:32").returncode in (0, 1)
    result = _run("demo", data=tmp_path)
    assert result.returncode == 2
    assert "memshelf reembed" in result.stderr and "fake:hashed-words:32" in result.stderr
    result = _run("reembed", data=tmp_path)
    assert result.returncode == 0 and "re-embedded 5 items" in result.stdout
    assert _run("demo", data=tmp_path).returncode == 0


def test_bad_store_url_is_a_friendly_error(tmp_path: Path) -> None:
    result = _run("sweep", "--store", "postgres://x", data=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Unknown store URL scheme")
