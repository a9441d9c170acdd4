"""The MCP tools over streamable HTTP at the real service's ``/mcp`` (uvicorn on
127.0.0.1, SQLite and Redis), authorised by the service's API keys: the user comes from
the key, so alice's key reaches alice's shelf only, through every tool."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from mcp import MCPError

from memshelf.ops import memories as ops
from tests.mcp.conftest import data, error, http_client, text
from tests.service.conftest import Service

READ_TOOLS = {"search_memories", "list_memories", "get_memory", "memory_history"}
WRITE_TOOLS = {"add_memory", "update_memory", "delete_memory", "forget"}
TEAM_TOOLS = {"search_findings", "propose_finding"}  # alice's key belongs to a team
BOB_FACTS = ("Bob's locker code is 4711", "Bob is allergic to walnuts")
SECRETS = ("4711", "walnut")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def _post(svc: Service, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{svc.url}/mcp", json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=60)


async def test_tools_over_http_with_either_key_header(service: Service) -> None:
    async with http_client(service, "alice", header="x-api-key") as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == READ_TOOLS | WRITE_TOOLS | TEAM_TOOLS
        key = data(await client.call_tool("add_memory", {"text": "Prefers green tea"}))["memory"][
            "key"
        ]
    async with http_client(service, "alice") as client:  # Authorization: Bearer
        found = data(await client.call_tool("search_memories", {"query": "tea"}))
        assert [m["key"] for m in found["memories"]] == [key]
    assert ops.get_memory(service.state.store, "alice", key).value["provenance"]["source"] == "mcp"


def test_no_key_a_bad_key_or_a_revoked_key_is_refused(sqlite_service: Service) -> None:
    svc = sqlite_service
    for headers in (
        {},
        {"Authorization": "Bearer msk_nope_nope"},
        {"x-api-key": "not-a-key"},
        {"Authorization": f"Bearer {svc.keys['revoked']}"},
    ):
        answer = _post(svc, headers)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "API key" in answer.json()["detail"]
    chat_only = svc.state.keys.create("alice", ["chat"])[1]
    answer = _post(svc, {"x-api-key": chat_only})
    assert answer.status_code == 403
    assert "memories:read" in answer.json()["detail"]
    assert _post(svc, {"x-api-key": svc.keys["alice"]}).status_code == 200


async def test_a_bad_key_fails_the_sdk_client_too(sqlite_service: Service) -> None:
    sqlite_service.keys["bogus"] = "msk_0123_bogus"
    with pytest.raises(ExceptionGroup) as caught:  # the SDK reports the 401 as an MCPError
        async with http_client(sqlite_service, "bogus") as client:
            await client.list_tools()
    assert caught.group_contains(MCPError)


async def test_a_key_without_a_scope_cannot_use_the_tools_that_need_it(
    sqlite_service: Service,
) -> None:
    svc = sqlite_service
    kept = ops.add_memory(svc.state.store, "alice", "Prefers green tea").key
    args = {
        "search_memories": {"query": "tea"},
        "list_memories": {},
        "get_memory": {"key": kept},
        "memory_history": {"key": kept},
        "add_memory": {"text": "Rides a red bicycle"},
        "update_memory": {"key": kept, "text": "Prefers black tea"},
        "delete_memory": {"key": kept},
        "forget": {"query": kept},
    }
    for who, scope, needing in (
        ("no:memories:read", "memories:read", READ_TOOLS),
        ("no:memories:write", "memories:write", WRITE_TOOLS),
    ):
        async with http_client(svc, who) as client:
            for name in sorted(needing):
                refused = error(await client.call_tool(name, args[name]))
                assert f"lacks the '{scope}' scope" in refused, name
                assert "green tea" not in refused
            for name in sorted((READ_TOOLS | WRITE_TOOLS) - needing - {"delete_memory"}):
                data(await client.call_tool(name, args[name]))  # the scope it holds works
    assert ops.get_memory(svc.state.store, "alice", kept).value["text"] == "Prefers black tea"


def _string_arguments(schema: dict[str, Any], value: str) -> list[dict[str, Any]]:
    """Arguments for a tool: every string property set to ``value`` in turn (with the
    other required strings set too), so each way a tool takes text is tried."""
    props = schema.get("properties", {})
    strings = [
        name
        for name, prop in props.items()
        if prop.get("type") == "string"
        or any(option.get("type") == "string" for option in prop.get("anyOf", []))
    ]
    required = [n for n in schema.get("required", []) if n in strings]
    calls = []
    for name in strings:
        if props[name].get("enum"):
            continue
        calls.append({**dict.fromkeys(required, value), name: value})
    return calls or [{}]


async def test_alice_can_never_read_or_change_bobs_memories_through_any_tool(
    service: Service,
) -> None:
    """For every tool, every string argument, each of bob's memory keys (and bob's own
    forget token): alice's key reads nothing of bob's and changes nothing of bob's."""
    store = service.state.store
    async with http_client(service, "bob") as bob:
        bob_keys = [
            data(await bob.call_tool("add_memory", {"text": fact}))["memory"]["key"]
            for fact in BOB_FACTS
        ]
        bob_token = data(await bob.call_tool("forget", {"query": BOB_FACTS[0]}))["confirm_token"]
    before = json.dumps(ops.export_memories(store, "bob"), sort_keys=True, default=str)
    async with http_client(service, "alice") as alice:
        tools = (await alice.list_tools()).tools
        listed = {t.name for t in tools}
        assert listed == READ_TOOLS | WRITE_TOOLS | TEAM_TOOLS  # a new tool is tried too
        tried = 0
        for tool in tools:
            for value in [*bob_keys, bob_token, "locker code", "allergic"]:
                for arguments in _string_arguments(tool.input_schema, value):
                    result = await alice.call_tool(tool.name, arguments)
                    # a new finding's random key could hold "4711" by chance: not bob's
                    shown = re.sub(r"fd_[0-9a-f]{24}", "fd_", text(result).lower())
                    assert not any(s in shown for s in SECRETS), (tool.name, arguments)
                    assert "traceback" not in shown
                    tried += 1
        listing = data(await alice.call_tool("list_memories", {"status": "all", "limit": 50}))
    assert tried >= 30
    assert not any(s in json.dumps(listing).lower() for s in SECRETS)
    after = json.dumps(ops.export_memories(store, "bob"), sort_keys=True, default=str)
    assert after == before
    async with http_client(service, "bob") as bob:  # bob's own token still works for bob
        done = data(await bob.call_tool("forget", {"confirm_token": bob_token}))
    assert [m["key"] for m in done["forgotten"]] == [bob_keys[0]]
