"""``memshelf mcp --user U`` as desktop clients run it: a real subprocess on a temporary
data dir, driven by the SDK's stdio client; what it writes is in the real SQLite file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from memshelf.config import Settings
from memshelf.ops import memories as ops
from memshelf.stores import open_store
from tests.cli.helpers import run_cli
from tests.mcp.conftest import data, error

FAKE = {"MEMSHELF_EMBEDDINGS": "fake", "MEMSHELF_CHAT_MODEL": "fake"}


def stdio(data_dir: Path, user: str, *extra: str) -> Client:
    env = {**os.environ, "MEMSHELF_DATA_DIR": str(data_dir), **FAKE}
    command = [sys.executable, "-m", "memshelf.cli", "mcp", "--user", user, *extra]
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    return Client(params, cache=None, read_timeout_seconds=120)


async def test_stdio_server_serves_the_users_shelf_from_the_real_file(tmp_path: Path) -> None:
    async with stdio(tmp_path, "alice", "--team", "bees") as client:
        assert len((await client.list_tools()).tools) == 10  # with the team's findings
        key = data(await client.call_tool("add_memory", {"text": "Keeps bees in the garden"}))[
            "memory"
        ]["key"]
        found = data(await client.call_tool("search_memories", {"query": "bees"}))
        assert [m["key"] for m in found["memories"]] == [key]
        assert "has no memory" in error(await client.call_tool("get_memory", {"key": "nope"}))
    async with stdio(tmp_path, "bob") as client:  # another --user: another shelf, no team
        assert len((await client.list_tools()).tools) == 8
        assert data(await client.call_tool("list_memories", {}))["total"] == 0
        assert "has no memory" in error(await client.call_tool("get_memory", {"key": key}))
    settings = Settings(data_dir=tmp_path, embeddings="fake", chat_model="fake")
    with open_store(settings=settings) as store:
        item = ops.get_memory(store, "alice", key)
        assert item.value["text"] == "Keeps bees in the garden"
        assert item.value["provenance"]["source"] == "mcp"
        assert ops.list_memories(store, "bob").total == 0


def test_a_blank_user_is_refused_with_a_message(tmp_path: Path) -> None:
    done = run_cli("mcp", "--user", " ", data=tmp_path, timeout=120, **FAKE)
    assert done.returncode == 2
    assert "No user id given" in done.stderr
    assert done.stdout == ""  # stdout is the protocol's alone
