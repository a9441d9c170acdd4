from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from memshelf.config import Settings
from memshelf.embeddings import FakeEmbedder
from memshelf.stores.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(
        tmp_path / "agent.db", index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    ) as opened:
        yield opened


@pytest.fixture
def saver() -> InMemorySaver:
    return InMemorySaver()


@pytest.fixture
def agent_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
