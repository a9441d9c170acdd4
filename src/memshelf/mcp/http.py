"""The MCP server over streamable HTTP, mounted in the service at ``/mcp``.

Every request is authorised with the service's API keys before the MCP SDK sees it
(``Authorization: Bearer <key>`` or ``x-api-key: <key>``, verified by the service's
:class:`~memshelf.ops.keys.KeyRing`): no key or a bad one is answered 401, a key that can
can use no tool (no memories or findings scope) 403. The key's user and scopes travel in
the ASGI scope as the SDK's :class:`AuthenticatedUser`, its teams in the request's
principal; :class:`~memshelf.mcp.access.KeyAccess` reads them back per tool call, and
each tool checks its own scope. The findings tools are listed only for a key that
belongs to a team, and act only on the key's teams.

The transport is stateless with JSON answers: every request stands alone, so it works
unchanged behind ``memshelf serve --workers N``. DNS-rebinding protection is off because
nothing ambient authorises a request (no cookie): a page that rebinds a name to this
host still has no key to send.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ListToolsResult
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from memshelf.mcp.access import (
    ADMIN,
    FINDINGS_READ,
    FINDINGS_WRITE,
    NO_KEY,
    READ,
    WRITE,
    KeyAccess,
    key_teams,
)
from memshelf.mcp.findings import FINDINGS_TOOLS, findings_toolset
from memshelf.mcp.server import TOOLSETS, build_server
from memshelf.service.auth import Principal

__all__ = ["MCP_PATH", "KeyAuth", "mount_mcp"]

MCP_PATH = "/mcp"


def _token(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


class KeyAuth:
    """ASGI wrapper admitting only requests that carry a valid memshelf API key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _token(Headers(scope=scope))
        state = getattr(scope["app"].state, "memshelf", None)
        key = await run_in_threadpool(state.keys.verify, token) if token and state else None
        if key is None:
            detail = "Invalid or revoked API key." if token else NO_KEY
            refusal = JSONResponse({"detail": detail}, 401, {"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        if not {READ, WRITE, FINDINGS_READ, FINDINGS_WRITE, ADMIN} & set(key.scopes):
            detail = (
                f"This key holds none of {READ!r}, {WRITE!r}, {FINDINGS_READ!r}, "
                f"{FINDINGS_WRITE!r}; the MCP tools need one."
            )
            await JSONResponse({"detail": detail}, 403)(scope, receive, send)
            return
        # the request log names the (hashed) user, as for every other route
        principal = Principal(
            user_id=key.user_id, key_id=key.key_id, scopes=key.scopes, teams=key.teams
        )
        scope.setdefault("state", {})["principal"] = principal
        access = AccessToken(
            token=key.key_id,  # the key's id, never its secret
            client_id=key.key_id,
            scopes=list(key.scopes),
            subject=key.user_id,
        )
        await self.app({**scope, "user": AuthenticatedUser(access)}, receive, send)


class KeyedServer(MCPServer):
    """Lists the findings tools only to a key that belongs to a team: a client sees the
    tools it can use (the tools themselves still check the key's teams on every call)."""

    async def _handle_list_tools(self, ctx: Any, params: Any) -> ListToolsResult:
        listed = await super()._handle_list_tools(ctx, params)
        scope = getattr(getattr(ctx, "request", None), "scope", None)
        if not (isinstance(scope, dict) and key_teams(scope)):
            listed.tools = [t for t in listed.tools if t.name not in FINDINGS_TOOLS]
        return listed


def mount_mcp(app: Starlette, path: str = MCP_PATH) -> MCPServer:
    """Serve the MCP tools at ``path`` of ``app``, whose ``state.memshelf`` (the
    service's :class:`~memshelf.service.state.ServiceState`) supplies keys and store.
    The SDK's session manager runs inside the app's lifespan, after the service's own
    start-up and stopped before it."""
    server = build_server(
        KeyAccess(), toolsets=(*TOOLSETS, findings_toolset()), server_class=KeyedServer
    )
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    endpoint = KeyAuth(StreamableHTTPASGIApp(manager))
    app.router.routes.append(
        Route(path, endpoint=endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async with service_lifespan(served) as state, manager.run():
            yield state

    app.router.lifespan_context = lifespan
    return server
