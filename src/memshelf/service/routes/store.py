"""LangGraph server's store endpoints, with the shapes ``langgraph-sdk`` sends and expects.

A caller reaches one namespace: their own shelf ``["memories", <label>]``, where the label
is their user id percent-encoded by ``memshelf.namespaces.encode_label`` (``alice`` is
``alice``; ``john.doe`` is ``john%2Edoe``), the same namespace every returned item carries.
Any other namespace answers like an empty one: 404 for a get or delete, no items, no
namespaces; a put elsewhere is refused with 422, as is a value memshelf could not read
back (an engine field such as ``version`` or ``text`` of the wrong type, nesting deeper
than 64 levels, NaN) or a key ``/v1/memories/{key}`` could not reach (a ``/``, ``export``).
Two differences from LangGraph's own server: a missing item is a 404 (not ``null``), so
another user's item and a missing one answer alike, and a put without ``ttl`` gets the
store's default time-to-live.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from langgraph.store.base import NOT_PROVIDED
from pydantic import BaseModel, Field

from memshelf.ops import memories as ops
from memshelf.service.auth import MemoriesRead, MemoriesWrite, Services

router = APIRouter(prefix="/store", tags=["store"])

Label = Annotated[str, Field(max_length=1024)]
Key = Annotated[str, Field(min_length=1, max_length=1024)]
Limit = Annotated[int, Field(ge=1, le=1000)]
Offset = Annotated[int, Field(ge=0, le=1_000_000)]


class PutItem(BaseModel):
    namespace: list[Label] = Field(max_length=16, description='Your shelf: ["memories", <label>].')
    key: Key
    value: dict[str, Any]
    index: Literal[False] | list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        description="Fields to embed for search; false: none; omitted: the store's default.",
    )
    ttl: float | None = Field(
        default=None, gt=0, description="Minutes to live; omitted: the store's default."
    )


class DeleteItem(BaseModel):
    namespace: list[Label] = Field(max_length=16)
    key: Key


class SearchItems(BaseModel):
    namespace_prefix: list[Label] = Field(max_length=16)
    filter: dict[str, Any] | None = None
    limit: Limit = 10
    offset: Offset = 0
    query: str | None = Field(default=None, max_length=4000)
    refresh_ttl: bool | None = None


class ListNamespaces(BaseModel):
    prefix: list[Label] | None = Field(default=None, max_length=16)
    suffix: list[Label] | None = Field(default=None, max_length=16)
    max_depth: int | None = Field(default=None, ge=1, le=16)
    limit: Limit = 100
    offset: Offset = 0


class StoreItem(BaseModel):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class StoreSearchItem(StoreItem):
    score: float | None = None


class SearchItemsResponse(BaseModel):
    items: list[StoreSearchItem]


class ListNamespacesResponse(BaseModel):
    namespaces: list[list[str]]


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such item on your shelf (another user's looks the same)."}
}


@router.put("/items", status_code=204, response_class=Response)
def put_item(body: PutItem, services: Services, principal: MemoriesWrite) -> None:
    """Create or replace an item on your shelf (recorded in its history)."""
    ops.store_put(
        services.store,
        principal.user_id,
        body.namespace,
        body.key,
        body.value,
        index=body.index,
        ttl=NOT_PROVIDED if body.ttl is None else body.ttl,
    )


@router.get("/items", response_model=StoreItem, responses=NOT_FOUND)
def get_item(
    services: Services,
    principal: MemoriesRead,
    key: Annotated[str, Query(min_length=1, max_length=1024)],
    namespace: Annotated[
        str, Query(max_length=16 * 1024, description="Labels joined by '.', as the SDK sends.")
    ] = "",
    refresh_ttl: bool | None = None,
) -> dict[str, Any]:
    """One item of your shelf."""
    labels = namespace.split(".") if namespace else []
    item = ops.store_get(services.store, principal.user_id, labels, key, refresh_ttl=refresh_ttl)
    return {**item.dict(), "value": ops.shown_value(item.value)}


@router.delete("/items", status_code=204, response_class=Response, responses=NOT_FOUND)
def delete_item(
    body: Annotated[DeleteItem, Body()], services: Services, principal: MemoriesWrite
) -> None:
    """Delete an item of your shelf, and the history that holds its text."""
    ops.store_delete(services.store, principal.user_id, body.namespace, body.key)


@router.post("/items/search", response_model=SearchItemsResponse)
def search_items(body: SearchItems, services: Services, principal: MemoriesRead) -> dict[str, Any]:
    """Items of your shelf by filter and/or meaning (``score`` when ``query`` is given)."""
    found = ops.store_search(
        services.store,
        principal.user_id,
        body.namespace_prefix,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        query=body.query,
        refresh_ttl=body.refresh_ttl,
    )
    return {"items": [{**item.dict(), "value": ops.shown_value(item.value)} for item in found]}


@router.post("/namespaces", response_model=ListNamespacesResponse)
def list_namespaces(
    body: ListNamespaces, services: Services, principal: MemoriesRead
) -> dict[str, Any]:
    """Your namespaces (never anyone else's), matched and cut like LangGraph's."""
    found = ops.store_namespaces(
        services.store,
        principal.user_id,
        prefix=body.prefix,
        suffix=body.suffix,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns) for ns in found]}
