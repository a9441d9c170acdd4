"""Who is calling: an API key becomes a :class:`Principal` (user id, scopes, teams).

The user id and the teams come from the key and from nowhere else — never from a path,
body or query: a team named in a path is only looked up among the key's own teams.
``Authorization: Bearer <token>`` and ``x-api-key: <token>`` (what ``langgraph-sdk``
sends) are both accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from inspect import isfunction
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from memshelf.errors import NotFoundError
from memshelf.service.state import ServiceState

_bearer = HTTPBearer(auto_error=False, description="An API key from `memshelf keys create`.")
_api_key = APIKeyHeader(
    name="x-api-key", auto_error=False, description="The same API key (langgraph-sdk's header)."
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: every owner-scoped operation receives ``user_id`` from here."""

    user_id: str
    key_id: str
    scopes: tuple[str, ...]
    teams: tuple[str, ...] = ()

    def member_of(self, team: str) -> str:
        """``team`` if the key belongs to it; any other team (someone else's or none at
        all) is not found, with the same answer either way."""
        if team not in self.teams:
            raise NotFoundError(
                f"No team {team!r} for this key. Your key's teams are listed by GET /v1/me; "
                "an admin adds one with `memshelf keys create --user <you> --team <team>`."
            )
        return team


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.memshelf
    return state


Services = Annotated[ServiceState, Depends(service_state)]

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
# Every principal dependency require() made, with the scope it demands (None: any key).
REQUIRED_SCOPE: dict[Callable[..., Any], str | None] = {}


def require(scope: str | None) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits a request whose key is valid and holds ``scope``
    (``admin`` implies every scope; ``None``: any valid key)."""

    async def principal(
        request: Request,
        services: Services,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key)],
    ) -> Principal:
        token = bearer.credentials if bearer is not None else header_key
        if not token:
            raise HTTPException(
                401,
                "Missing API key: send `Authorization: Bearer <key>` "
                "or `x-api-key: <key>`; create one with `memshelf keys create`.",
                headers=UNAUTHORIZED,
            )
        key = await run_in_threadpool(services.keys.verify, token)
        if key is None:
            raise HTTPException(401, "Invalid or revoked API key.", headers=UNAUTHORIZED)
        if scope is not None and scope not in key.scopes and "admin" not in key.scopes:
            raise HTTPException(403, f"This key lacks the {scope!r} scope.")
        found = Principal(
            user_id=key.user_id, key_id=key.key_id, scopes=key.scopes, teams=key.teams
        )
        request.state.principal = found
        limiter = getattr(request.app.state, "limiter", None)
        if limiter is not None:  # after auth: an unknown caller never spends a key's quota
            limiter.admit(request, found)
        return found

    principal.__name__ = f"require_{(scope or 'key').replace(':', '_')}"
    REQUIRED_SCOPE[principal] = scope
    return principal


def principal_scopes(dependant: Dependant) -> set[str | None]:
    """The scopes of the principal dependencies (``require(...)``) anywhere in a route's
    dependency tree: exactly one for every non-public route (the auth matrix test checks)."""
    call = dependant.call
    found = {REQUIRED_SCOPE[call]} if isfunction(call) and call in REQUIRED_SCOPE else set()
    for sub in dependant.dependencies:
        found |= principal_scopes(sub)
    return found


AnyKey = Annotated[Principal, Depends(require(None))]
Chat = Annotated[Principal, Depends(require("chat"))]
MemoriesRead = Annotated[Principal, Depends(require("memories:read"))]
MemoriesWrite = Annotated[Principal, Depends(require("memories:write"))]
FindingsRead = Annotated[Principal, Depends(require("findings:read"))]
FindingsWrite = Annotated[Principal, Depends(require("findings:write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
