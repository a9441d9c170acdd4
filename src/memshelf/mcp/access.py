"""Who a tool call acts for, and on which store: the owner never comes from a tool argument.

Over stdio the owner is the ``--user`` the server was started with (whoever runs the
process owns its stdin). Over HTTP it is the API key's user: :mod:`memshelf.mcp.http`
verifies the key on every request and leaves an :class:`AuthenticatedUser` in the ASGI
scope, which :class:`KeyAccess` reads back from the request that carried the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.store.base import BaseStore
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from memshelf.namespaces import encode_label

READ = "memories:read"
WRITE = "memories:write"
FINDINGS_READ = "findings:read"
FINDINGS_WRITE = "findings:write"
ADMIN = "admin"

__all__ = [
    "ADMIN",
    "FINDINGS_READ",
    "FINDINGS_WRITE",
    "READ",
    "WRITE",
    "Access",
    "Caller",
    "KeyAccess",
    "LocalAccess",
    "key_teams",
]


@dataclass(frozen=True)
class Caller:
    """The authenticated owner of one tool call and the store their shelf lives in."""

    user_id: str
    scopes: frozenset[str]
    store: BaseStore
    teams: tuple[str, ...] = ()

    def team(self, named: str | None) -> str:
        """The team a findings tool acts on: ``named`` if the caller belongs to it, the
        caller's only team if none is named. Any other team is refused exactly like one
        that does not exist (the tool argument selects, it never authorises)."""
        if named is None and len(self.teams) == 1:
            return self.teams[0]
        if named is None:
            raise ToolError(
                f"Name the team: this key belongs to {', '.join(map(repr, self.teams))}."
                if self.teams
                else "This key belongs to no team; an admin adds one with "
                "`memshelf keys create --user <you> --team <team>`."
            )
        if named not in self.teams:
            raise ToolError(f"No team {named!r} for this key; its teams are listed by /v1/me.")
        return named

    def require(self, scope: str) -> Caller:
        """This caller, if they hold ``scope`` (``admin`` implies every scope)."""
        if scope not in self.scopes and ADMIN not in self.scopes:
            raise ToolError(
                f"This API key lacks the {scope!r} scope this tool needs; "
                "create a key with it (`memshelf keys create --user <you> --scope ...`)."
            )
        return self


class Access(Protocol):
    """Resolves the caller of a tool call from its context (never from its arguments)."""

    def caller(self, ctx: Context[Any, Any]) -> Caller: ...


class LocalAccess:
    """One fixed owner with every scope: the stdio server and in-process use."""

    def __init__(self, store: BaseStore, user_id: str, teams: tuple[str, ...] = ()) -> None:
        encode_label(user_id)  # the same validation every shelf applies: fail at start-up
        self._caller = Caller(
            user_id=user_id,
            scopes=frozenset({READ, WRITE, FINDINGS_READ, FINDINGS_WRITE}),
            store=store,
            teams=teams,
        )

    def caller(self, ctx: Context[Any, Any]) -> Caller:
        return self._caller


NO_KEY = (
    "This MCP endpoint needs an API key: send `Authorization: Bearer <key>` or "
    "`x-api-key: <key>`; create one with `memshelf keys create --user <you>`."
)


class KeyAccess:
    """The API key's user, read from the HTTP request that carried the call.

    A call that did not come through :func:`memshelf.mcp.http.mount_mcp`'s key check
    (no request, or no authenticated user on it) is refused rather than given a default.
    """

    def caller(self, ctx: Context[Any, Any]) -> Caller:
        request = ctx.request_context.request
        scope = getattr(request, "scope", None)
        user = scope.get("user") if isinstance(scope, dict) else None
        app = scope.get("app") if isinstance(scope, dict) else None
        state = getattr(getattr(app, "state", None), "memshelf", None)
        token = user.access_token if isinstance(user, AuthenticatedUser) else None
        if token is None or not token.subject or state is None:
            raise ToolError(NO_KEY)
        return Caller(
            user_id=token.subject,
            scopes=frozenset(token.scopes),
            store=state.store,
            teams=key_teams(scope),
        )


def key_teams(scope: Any) -> tuple[str, ...]:
    """The teams of the key that authorised this request (set by the HTTP key check)."""
    if not isinstance(scope, dict):
        return ()
    principal = (scope.get("state") or {}).get("principal")
    return tuple(getattr(principal, "teams", ()))
