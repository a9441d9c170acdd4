"""The LangGraph store endpoints driven by the real ``langgraph-sdk`` client against a real
uvicorn, on SQLite and Redis: the SDK's shapes, and a caller who reaches their own shelf
and nothing else, by any namespace spelling."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError, UnprocessableEntityError

from tests.service.conftest import Service

OTHER_NAMESPACES: list[list[str]] = [
    ["memories", "alice"],
    ["memories", "*"],
    ["memories"],
    ["*", "alice"],
    ["keys"],
    ["history", "alice"],
    ["threads", "alice"],
    ["memories", "bob", "alice"],
    ["memories", "Alice"],
    ["memories", "alice%20"],
]


def sdk(service: Service, who: str) -> SyncLangGraphClient:
    return get_sync_client(url=service.url, api_key=service.keys[who])


def _error_body(call: Any) -> tuple[int, str]:
    """The status and body of the HTTP error ``call`` raises through the SDK."""
    with pytest.raises(httpx.HTTPStatusError) as raised:
        call()
    return raised.value.response.status_code, raised.value.response.text


def test_round_trip_with_the_sdk(service: Service) -> None:
    alice = sdk(service, "alice")
    ns = ["memories", "alice"]
    alice.store.put_item(ns, "tea", {"text": "Alice drinks green tea every morning"})
    alice.store.put_item(ns, "bike", {"text": "Alice cycles to work"}, index=False, ttl=60)
    item = alice.store.get_item(ns, "tea")
    assert item["namespace"] == ns and item["key"] == "tea"
    assert item["value"] == {"text": "Alice drinks green tea every morning"}
    assert item["created_at"] and item["updated_at"]

    found = alice.store.search_items(ns, query="what does she drink", limit=5)
    assert found["items"][0]["key"] == "tea" and found["items"][0]["score"] is not None
    listed = alice.store.search_items(
        ["memories", "alice"], filter={"text": "Alice cycles to work"}
    )
    assert [i["key"] for i in listed["items"]] == ["bike"]
    assert alice.store.list_namespaces() == {"namespaces": [ns]}
    assert alice.store.list_namespaces(prefix=["memories"], max_depth=1) == {
        "namespaces": [["memories"]]
    }

    alice.store.delete_item(ns, "tea")
    with pytest.raises(NotFoundError):
        alice.store.get_item(ns, "tea")
    with pytest.raises(NotFoundError):
        alice.store.delete_item(ns, "tea")
    with service.client("alice") as http:  # the store's writes are the shelf's memories
        listed_v1 = http.get("/v1/memories").json()
        assert [m["key"] for m in listed_v1["items"]] == ["bike"]
        assert [e["op"] for e in http.get("/v1/memories/tea/history").json()] == ["delete"]


def test_bob_never_reaches_alices_items(service: Service) -> None:
    alice, bob = sdk(service, "alice"), sdk(service, "bob")
    alice.store.put_item(["memories", "alice"], "plan", {"text": "Alice plans a surprise party"})
    bob.store.put_item(["memories", "bob"], "own", {"text": "Bob likes chess"})
    missing = _error_body(lambda: bob.store.get_item(["memories", "bob"], "plan"))
    assert missing[0] == 404

    for ns in OTHER_NAMESPACES:
        assert _error_body(lambda ns=ns: bob.store.get_item(ns, "plan")) == missing, ns
        assert _error_body(lambda ns=ns: bob.store.delete_item(ns, "plan")) == missing, ns
        for query in (None, "surprise party"):
            found = bob.store.search_items(ns, query=query, limit=100)
            assert found == {"items": []}, ns
        with pytest.raises(UnprocessableEntityError):
            bob.store.put_item(ns, "plan", {"text": "Bob was here"})
        for prefix in (ns, None, ["memories"], ["*"]):
            listed = bob.store.list_namespaces(prefix=prefix, limit=1000)["namespaces"]
            assert listed in ([], [["memories", "bob"]]), (prefix, listed)
        assert bob.store.list_namespaces(suffix=ns[-1:])["namespaces"] in (
            [],
            [["memories", "bob"]],
        )
    with service.client("bob") as http:  # an empty prefix (the SDK drops it) and ("",)
        bodies: list[dict[str, list[str]]] = [{"namespace_prefix": []}, {"namespace_prefix": [""]}]
        for body in bodies:
            assert http.post("/store/items/search", json=body).json() == {"items": []}
        got = http.get("/store/items", params={"namespace": "", "key": "plan"})
        assert (got.status_code, got.text) == missing

    kept = alice.store.get_item(["memories", "alice"], "plan")
    assert kept["value"] == {"text": "Alice plans a surprise party"}
    assert alice.store.list_namespaces()["namespaces"] == [["memories", "alice"]]


def test_a_user_id_outside_the_safe_alphabet_uses_its_encoded_label(service: Service) -> None:
    """The client sends the label memshelf.namespaces.encode_label makes, never the raw id."""
    with service.client("admin") as admin:
        made = admin.post("/v1/keys", json={"user_id": "x%41 y"}).json()
        other = admin.post("/v1/keys", json={"user_id": "xA"}).json()
    odd = get_sync_client(url=service.url, api_key=made["token"])
    xa = get_sync_client(url=service.url, api_key=other["token"])
    xa.store.put_item(["memories", "xA"], "k", {"text": "xA keeps snakes"})
    label = ["memories", "x%2541%20y"]
    odd.store.put_item(label, "k", {"text": "the odd user keeps bees"})
    assert odd.store.get_item(label, "k")["value"]["text"] == "the odd user keeps bees"
    assert odd.store.list_namespaces() == {"namespaces": [label]}
    for raw in (["memories", "x%41 y"], ["memories", "xA"]):
        with pytest.raises(NotFoundError):
            odd.store.get_item(raw, "k")
        assert odd.store.search_items(raw) == {"items": []}
    assert xa.store.get_item(["memories", "xA"], "k")["value"]["text"] == "xA keeps snakes"


def test_scopes(service: Service) -> None:
    ns = ["memories", "alice"]
    sdk(service, "alice").store.put_item(ns, "k", {"text": "Alice has a cat"})
    reader, writer = sdk(service, "no:memories:write"), sdk(service, "no:memories:read")
    assert reader.store.get_item(ns, "k")["value"]["text"] == "Alice has a cat"
    with pytest.raises(PermissionDeniedError):
        reader.store.put_item(ns, "k2", {"text": "Alice has a dog"})
    with pytest.raises(PermissionDeniedError):
        reader.store.delete_item(ns, "k")
    for read in (
        lambda: writer.store.get_item(ns, "k"),
        lambda: writer.store.search_items(ns),
        lambda: writer.store.list_namespaces(),
    ):
        with pytest.raises(PermissionDeniedError):
            read()
    writer.store.put_item(ns, "k2", {"text": "Alice has a dog"})
    with service.client(None) as anon:
        assert anon.post("/store/items/search", json={"namespace_prefix": ns}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"namespace_prefix": ["memories", "alice"], "filter": {"text": {"$regex": "."}}},
        {"namespace_prefix": ["memories", "alice"], "limit": 0},
        {"namespace_prefix": ["memories", "alice"], "offset": -1},
        {"namespace_prefix": ["memories", "alice", "a.b"]},
        {"namespace_prefix": "memories"},
        {},
    ],
)
def test_bad_search_input_is_422_not_500(sqlite_service: Service, body: dict[str, Any]) -> None:
    with sqlite_service.client("alice") as http:
        assert http.post("/store/items/search", json=body).status_code == 422


def test_bad_put_input_is_422_or_413_not_500(sqlite_service: Service) -> None:
    ns = ["memories", "alice"]
    with sqlite_service.client("alice") as http:
        for body, status in [
            ({"namespace": ns, "key": "k", "value": {"t": 1}, "ttl": -5}, 422),
            ({"namespace": ns, "key": "", "value": {"t": 1}}, 422),
            ({"namespace": ns, "key": "k", "value": [1]}, 422),
            ({"namespace": ns, "key": "k", "value": {"t": "x" * 300_000}}, 413),
        ]:
            assert http.put("/store/items", json=body).status_code == status, body
        assert http.get("/store/items", params={"namespace": "memories.alice"}).status_code == 422


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (b'{"text": "Alice likes tea", "version": "abc"}', "'version'"),
        (b'{"text": "Alice likes tea", "version": true}', "'version'"),
        (b'{"text": 5}', "'text'"),
        (b'{"text": "Alice likes tea", "status": {"a": 1}}', "'status'"),
        (b'{"text": "Alice likes tea", "pinned": "no"}', "'pinned'"),
        (b'{"text": "Alice likes tea", "kind": ["x"]}', "'kind'"),
        (b'{"text": "Alice likes tea", "valid_from": 3}', "'valid_from'"),
        (b'{"v": NaN}', "NaN"),
        (b'{"v": ' + _nested(65) + b"}", "64 levels"),
        (b'{"v": ' + _nested(900) + b"}", "64 levels"),
    ],
)
def test_a_value_memshelf_could_not_read_back_is_refused(
    service: Service, value: bytes, named: str
) -> None:
    """Each of these was stored (204) and then failed every later listing with a 500."""
    with service.client("alice") as http:
        body = b'{"namespace": ["memories", "alice"], "key": "odd", "value": ' + value + b"}"
        refused = http.put("/store/items", content=body, headers=JSON)
        assert refused.status_code == 422 and named in refused.json()["detail"], refused.text
        assert http.get("/v1/memories", params={"status": "all"}).json()["total"] == 0
        fine = b'{"namespace": ["memories", "alice"], "key": "ok", "value": {"v": '
        put = http.put("/store/items", content=fine + _nested(63) + b"}}", headers=JSON)
        assert put.status_code == 204, put.text  # 64 levels with the value itself


@pytest.mark.parametrize("key", ["export", "a/b", "search", ".."])
def test_a_key_the_memories_api_cannot_address_is_refused(service: Service, key: str) -> None:
    with service.client("alice") as http:
        body = {"namespace": ["memories", "alice"], "key": key, "value": {"text": "Alice sings"}}
        refused = http.put("/store/items", json=body)
        assert refused.status_code == 422 and "'/'" in refused.json()["detail"]


def test_odd_values_already_stored_never_fail_a_listing(sqlite_service: Service) -> None:
    """Values written before the checks (an older memshelf, or the library directly)."""
    store = sqlite_service.state.store
    deep: object = []
    for _ in range(300):
        deep = [deep]
    odd = {"text": 5, "version": "abc", "status": {"a": 1}, "pinned": "no", "kind": ["x"]}
    store.put(("memories", "alice"), "odd", odd)
    store.put(("memories", "alice"), "deep", {"text": "Alice digs deep", "v": deep})
    with sqlite_service.client("alice") as http:
        listed = http.get("/v1/memories", params={"status": "all"})
        assert listed.status_code == 200, listed.text
        shown = {m["key"]: m for m in listed.json()["items"]}
        assert shown["odd"]["version"] == 1 and shown["odd"]["pinned"] is False
        assert shown["odd"]["text"] == "5"
        assert "64 levels" in shown["deep"]["value"]["error"]
        assert http.get("/v1/memories/odd").status_code == 200
        assert http.get("/v1/memories/export").status_code == 200
        edited = http.patch("/v1/memories/odd", json={"text": "Alice likes figs"})
        assert edited.status_code == 200 and edited.json()["version"] == 2
        found = http.post("/store/items/search", json={"namespace_prefix": ["memories", "alice"]})
        assert found.status_code == 200 and len(found.json()["items"]) == 2
        one = http.get("/store/items", params={"namespace": "memories.alice", "key": "deep"})
        assert one.status_code == 200
