"""MCP clients for the tests: in process over a real SQLite file, and over streamable
HTTP against the real service (uvicorn on 127.0.0.1, fixtures from tests/service)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langgraph.store.base import BaseStore
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from memshelf.config import Settings
from memshelf.mcp import LocalAccess, build_server
from memshelf.stores import open_store
from tests.service.conftest import Service, service, sqlite_service  # noqa: F401 (fixtures)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BaseStore]:
    """The embedded default store (a real SQLite file) with the deterministic embedder."""
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake", chat_model="fake")
    with open_store(settings=settings) as opened:
        yield opened


def local_client(store: BaseStore, user: str) -> Client:
    """An in-process client session with ``user``'s stdio-style server."""
    return Client(build_server(LocalAccess(store, user)), cache=None)


@asynccontextmanager
async def http_client(
    svc: Service, who: str | None = "alice", *, header: str = "bearer"
) -> AsyncIterator[Client]:
    """The SDK's streamable-HTTP client at the service's /mcp, with ``who``'s key."""
    token = svc.keys[who] if who else None
    headers: dict[str, str] = {}
    if token and header == "bearer":
        headers = {"Authorization": f"Bearer {token}"}
    elif token:
        headers = {"x-api-key": token}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{svc.url}/mcp", http_client=http), cache=None) as client,
    ):
        yield client


def data(result: CallToolResult) -> dict[str, Any]:
    """A successful tool answer's structured content (failing with the error if not)."""
    assert not result.is_error, text(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def text(result: CallToolResult) -> str:
    """Everything a tool answer says, as the model would read it."""
    parts = [getattr(block, "text", "") for block in result.content]
    if result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


def error(result: CallToolResult) -> str:
    """A tool error's message (failing if the call succeeded)."""
    assert result.is_error, text(result)
    message = text(result)
    assert "Traceback" not in message
    return message
