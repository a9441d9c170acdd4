"""A seeded shelf on a real SQLite file, opened the way the CLI opens it (fake embedder)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from memshelf.config import Settings
from memshelf.ops.memories import import_memories, list_memories
from memshelf.stores import MemshelfStore, open_store

USER = "alice"
SEED = ["I like green tea", "I live in Lisbon", "I deploy on fly.io"]


def cli_settings(data: Path) -> Settings:
    """What ``memshelf`` builds from MEMSHELF_DATA_DIR=data and MEMSHELF_EMBEDDINGS=fake."""
    return Settings(data_dir=data, embeddings="fake")


def records(texts: list[str], prefix: str = "k") -> list[dict[str, object]]:
    return [
        {"key": f"{prefix}{i:05d}", "value": {"text": text, "kind": "fact"}}
        for i, text in enumerate(texts)
    ]


def write_export(path: Path, texts: list[str], prefix: str = "k") -> Path:
    path.write_text(json.dumps(records(texts, prefix)), encoding="utf-8")
    return path


def open_shelf(url: str, data: Path) -> MemshelfStore:
    return open_store(url, settings=cli_settings(data))


def texts_on(url: str, data: Path, user: str = USER) -> set[str]:
    """What the user's shelf holds, read by a fresh store (as the next command would)."""
    with open_shelf(url, data) as store:
        return {str(item.value["text"]) for item in list_memories(store, user).items}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def seeded(tmp_path: Path, data: Path) -> Iterator[Path]:
    """A store file holding SEED on alice's shelf, closed (as between two commands)."""
    path = tmp_path / "shelf" / "memshelf.db"
    with open_shelf(str(path), data) as store:
        import_memories(store, USER, records(SEED))
    yield path
