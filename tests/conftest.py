"""Shared fixtures: isolated settings (never the user's real data dir) and store factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memshelf.config import Settings

# Local chat models are big and installed once per machine (`make models`): tests share
# them, while every other piece of state lives in the test's own data dir.
REAL_MODEL_DIR = Settings().model_dir


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own data dir; no MEMSHELF_* variable leaks in from the shell."""
    import os

    for name in list(os.environ):
        if name.startswith("MEMSHELF_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEMSHELF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEMSHELF_MODELS_DIR", str(REAL_MODEL_DIR))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(data_dir=tmp_path / "data", models_dir=REAL_MODEL_DIR)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One real Redis 8 (query engine) for the session; each store uses its own key prefix."""
    from memshelf.testing import redis_server

    with redis_server() as url:
        yield url
