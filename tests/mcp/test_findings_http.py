"""The findings tools over streamable HTTP at the real service's ``/mcp``: offered to a key
that belongs to a team, acting only on the key's teams. A ``team`` argument naming any
other team is refused exactly like a team that does not exist."""

from __future__ import annotations

from memshelf.ops import findings as ops
from memshelf.team.findings import Evidence
from tests.mcp.conftest import data, error, http_client
from tests.service.conftest import TEAMS, Service

TEAM_TOOLS = {"search_findings", "propose_finding"}
CLAIM = {
    "claim": "Worker bees live about six weeks in summer.",
    "source": "https://example.org/bees",
    "quote": "worker bees live about six weeks",
}
ALPHA, BETA = TEAMS["alice"], TEAMS["bob"]


async def test_findings_tools_act_on_the_keys_team_only(service: Service) -> None:
    store = service.state.store
    bobs = ops.propose_finding(
        store, BETA, "Drones never sting anyone.", Evidence("note:x", "drones", "", ""), by="t"
    )
    async with http_client(service, "alice") as alice:
        assert {t.name for t in (await alice.list_tools()).tools} >= TEAM_TOOLS
        made = data(await alice.call_tool("propose_finding", CLAIM))
        assert made["team"] == ALPHA and made["status"] == "proposed"
        assert ops.show(store, ALPHA, made["key"])[0].author == "mcp:alice"
        named = data(await alice.call_tool("propose_finding", {**CLAIM, "team": ALPHA}))
        assert named["team"] == ALPHA
        found = data(
            await alice.call_tool(
                "search_findings", {"query": "worker bees", "status": "proposed", "limit": 20}
            )
        )
        assert {f["key"] for f in found["findings"]} == {made["key"], named["key"]}
        for tool, args in (
            ("search_findings", {"query": "drones sting", "status": "proposed"}),
            ("propose_finding", CLAIM),
        ):
            missing = error(await alice.call_tool(tool, {**args, "team": "no-such-team"}))
            theirs = error(await alice.call_tool(tool, {**args, "team": BETA}))
            assert theirs.replace(repr(BETA), "T") == missing.replace("'no-such-team'", "T")
            assert "No team" in theirs and "Drones" not in theirs
    assert [v.key for v in ops.list_team_findings(store, BETA)] == [bobs]  # bob's untouched


async def test_a_key_without_a_team_is_not_offered_the_findings_tools(
    sqlite_service: Service,
) -> None:
    svc = sqlite_service
    svc.keys["dave"] = svc.state.keys.create("dave", ["memories:read", "findings:read"])[1]
    async with http_client(svc, "dave") as dave:
        assert not TEAM_TOOLS & {t.name for t in (await dave.list_tools()).tools}
        refused = error(await dave.call_tool("search_findings", {"query": "bees"}))
        assert "belongs to no team" in refused
        refused = error(await dave.call_tool("search_findings", {"query": "b", "team": ALPHA}))
        assert "No team" in refused


async def test_findings_scopes_and_several_teams(sqlite_service: Service) -> None:
    svc = sqlite_service
    keys = svc.state.keys
    svc.keys["reader"] = keys.create("erin", ["findings:read"], teams=[ALPHA])[1]
    svc.keys["two"] = keys.create("erin", teams=[ALPHA, "gamma"])[1]
    async with http_client(svc, "reader") as reader:  # a findings-only key is admitted
        listed = {t.name for t in (await reader.list_tools()).tools}
        assert listed >= TEAM_TOOLS
        assert data(await reader.call_tool("search_findings", {"query": "bees"}))["findings"] == []
        refused = error(await reader.call_tool("propose_finding", CLAIM))
        assert "lacks the 'findings:write' scope" in refused
        refused = error(await reader.call_tool("list_memories", {}))
        assert "memories:read" in refused
    async with http_client(svc, "two") as two:
        unnamed = error(await two.call_tool("propose_finding", CLAIM))
        assert "Name the team" in unnamed and "gamma" in unnamed
        made = data(await two.call_tool("propose_finding", {**CLAIM, "team": "gamma"}))
        assert made["team"] == "gamma"
    assert [v.key for v in ops.list_team_findings(svc.state.store, "gamma")] == [made["key"]]
