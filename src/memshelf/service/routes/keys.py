"""``/v1/keys``: API key management for admin keys; ``/v1/me`` tells any key who it is."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memshelf.ops.keys import DEFAULT_SCOPES, SCOPES
from memshelf.service.auth import Admin, AnyKey, Services

router = APIRouter(prefix="/v1", tags=["keys"])


class KeyCreate(BaseModel):
    user_id: str = Field(min_length=1, max_length=256, description="The user the key acts for.")
    scopes: list[str] | None = Field(
        default=None,
        description=f"Any of {', '.join(SCOPES)}; default {', '.join(DEFAULT_SCOPES)} "
        "(plus findings:read and findings:write for a key with teams).",
    )
    teams: list[str] = Field(
        default=[], max_length=50, description="The teams whose findings the key reaches."
    )
    name: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    key_id: str
    user_id: str
    scopes: list[str]
    teams: list[str] = []
    name: str
    created_at: str
    revoked_at: str | None = None


class KeyCreated(KeyOut):
    token: str = Field(description="The secret; shown only now, stored only as a hash.")


class Me(BaseModel):
    user_id: str
    key_id: str
    scopes: list[str]
    teams: list[str] = []


@router.get("/me", response_model=Me)
async def whoami(principal: AnyKey) -> dict[str, Any]:
    """The user, scopes and teams of the key making the request."""
    return {
        "user_id": principal.user_id,
        "key_id": principal.key_id,
        "scopes": principal.scopes,
        "teams": principal.teams,
    }


@router.post("/keys", response_model=KeyCreated, status_code=201)
async def create_key(body: KeyCreate, services: Services, _: Admin) -> dict[str, Any]:
    """Create a key for a user (admin)."""
    key, token = await run_in_threadpool(
        partial(services.keys.create, teams=body.teams),
        body.user_id,
        body.scopes,
        body.name,
    )
    return {**key.public(), "token": token}


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(
    services: Services,
    _: Admin,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
) -> list[dict[str, Any]]:
    """Every key, or one user's (admin); secrets are never shown."""
    found = await run_in_threadpool(services.keys.list, user_id)
    return [k.public() for k in found]


@router.delete("/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, services: Services, _: Admin) -> dict[str, Any]:
    """Revoke a key (admin); it stops working at once."""
    key = await run_in_threadpool(services.keys.revoke, key_id)
    return key.public()
