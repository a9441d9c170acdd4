"""The team findings tools in process, over a real SQLite store: a proposal is stored as
proposed by ``mcp:<user>`` for the server's team only, and search shows verified
findings unless asked for another status."""

from __future__ import annotations

import pytest
from langgraph.store.base import BaseStore
from mcp import Client

from memshelf.errors import MemshelfError
from memshelf.mcp import TOOLSETS, LocalAccess, build_server
from memshelf.mcp.findings import FINDINGS_NOTE, findings_toolset
from memshelf.ops import findings as ops
from tests.mcp.conftest import data, error

PROPOSAL = {
    "claim": "Worker bees live about six weeks in summer",
    "source": "https://example.org/bees",
    "quote": "In summer a worker bee lives for about six weeks.",
}


def team_client(store: BaseStore, user: str, team: str) -> Client:
    server = build_server(LocalAccess(store, user), toolsets=(*TOOLSETS, findings_toolset(team)))
    return Client(server, cache=None)


async def test_propose_then_search_within_the_team(store: BaseStore) -> None:
    async with team_client(store, "alice", "bees") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"search_findings", "propose_finding"} <= names
        key = data(await client.call_tool("propose_finding", PROPOSAL))["key"]
        verified = data(await client.call_tool("search_findings", {"query": "worker bees"}))
        proposed = data(
            await client.call_tool(
                "search_findings", {"query": "worker bees", "status": "proposed"}
            )
        )
        too_long = error(
            await client.call_tool("propose_finding", {**PROPOSAL, "quote": "q" * 601})
        )
    # proposals are not shared yet
    assert verified == {"team": "bees", "note": FINDINGS_NOTE, "findings": []}
    assert [f["key"] for f in proposed["findings"]] == [key]
    assert proposed["findings"][0]["quote"] == PROPOSAL["quote"]
    assert "600" in too_long
    view, events = ops.show(store, "bees", key)
    assert (view.status, view.author, view.cause["user_id"]) == ("proposed", "mcp:alice", "alice")
    assert [e["op"] for e in events] == ["propose"]
    async with team_client(store, "bob", "wasps") as other:  # another team sees nothing
        found = data(
            await other.call_tool("search_findings", {"query": "worker bees", "status": "proposed"})
        )
    assert found["findings"] == []


def test_a_bad_team_id_is_refused_at_start_up() -> None:
    with pytest.raises(MemshelfError, match="team id"):
        findings_toolset(" ")
