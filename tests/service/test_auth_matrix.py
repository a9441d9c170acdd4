"""Authorization, generated from the app's own route table.

Every API route except the public probes is called with no key, a bad key, a revoked
key and a key lacking the route's scope; every route with an owned path parameter is
called with another user's object and must answer 404 exactly like a missing one,
leaving the object intact. The routes come from ``create_app(...).routes`` at
collection, so a route added tomorrow is in the matrix without anyone editing this
file — and a route that takes no principal dependency, or a path parameter this file
does not know how to own, fails the suite until it is handled.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from memshelf.config import Settings
from memshelf.service import create_app
from memshelf.service.app import api_routes
from memshelf.service.auth import Chat, MemoriesRead, principal_scopes
from memshelf.service.limits import calls_model
from tests.service.conftest import TEAMS, Service, make_keys, running, service_settings

# Routes anyone may call: liveness and readiness probes (orchestrators hold no key).
# /openapi.json, /docs and /redoc are plain routes, not API routes, and public too.
PUBLIC = {"/healthz", "/readyz"}
# Path parameters that name no user's object, and why.
NOT_OWNED = {
    "assistant_id": "the service runs one graph ('agent'), the same for every user",
    "key_id": "admin-only routes manage every user's keys (the 403 column covers users)",
}
RUN_BODY = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
# Values a schema cannot suggest: the one assistant, a run's input, a fact the guard takes.
FIELD_VALUES: dict[str, Any] = {**RUN_BODY, "text": "Prefers green tea"}
FINDING = {
    "claim": "Worker bees live about six weeks in summer.",
    "source": "https://example.org/bees",
    "quote": "worker bees live about six weeks",
}

_UNUSED_DIR = Path(tempfile.gettempdir()) / "memshelf-auth-matrix-unused"
ROUTES = api_routes(
    create_app(Settings(data_dir=_UNUSED_DIR, chat_model="fake", embeddings="fake")).routes
)
CALLS = [(route, method) for route in ROUTES for method in sorted(route.methods or ())]


def label(call: tuple[APIRoute, str]) -> str:
    return f"{call[1]} {call[0].path}"


PROTECTED = [c for c in CALLS if c[0].path not in PUBLIC]
OWNED = [c for c in PROTECTED if {p.name for p in c[0].dependant.path_params} - set(NOT_OWNED)]


# --- one live service per backend, shared by the module --------------------------------


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = service_settings(tmp_path_factory.mktemp(request.param), request.param, redis_url)
    keys = make_keys(settings)
    with running(settings) as url:
        yield Service(url=url, settings=settings, keys=keys)


def _thread(client: httpx.Client, who: str, made: dict[str, str]) -> str:
    answer = client.post("/threads", json={})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["thread_id"])


def _run(client: httpx.Client, who: str, made: dict[str, str]) -> str:
    answer = client.post(f"/threads/{made['thread_id']}/runs", json=RUN_BODY)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run_id"])


def _memory(client: httpx.Client, who: str, made: dict[str, str]) -> str:
    # Keys may derive from the text: each user's fact differs, so alice's key is not bob's.
    answer = client.post("/v1/memories", json={"text": f"Likes the colour of {who}'s door"})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["key"])


def _team(client: httpx.Client, who: str, made: dict[str, str]) -> str:
    # A team is not made: it is the one the user's key belongs to (conftest.TEAMS).
    answer = client.get("/v1/me")
    assert answer.json()["teams"] == [TEAMS[who]], answer.text
    return TEAMS[who]


def _finding(client: httpx.Client, who: str, made: dict[str, str]) -> str:
    answer = client.post(f"/v1/teams/{made['team']}/findings", json=FINDING)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["key"])


# How to make one user's object for each owned path parameter (in this order), and the
# route its owner reads it back with.
MAKERS: dict[str, Callable[[httpx.Client, str, dict[str, str]], str]] = {
    "thread_id": _thread,
    "run_id": _run,
    "key": _memory,
    "team": _team,
    "finding_id": _finding,
}
READERS = {
    "thread_id": "/threads/{thread_id}",
    "run_id": "/threads/{thread_id}/runs/{run_id}",
    "key": "/v1/memories/{key}",
    "team": "/v1/teams/{team}/findings",
    "finding_id": "/v1/teams/{team}/findings/{finding_id}",
}


@pytest.fixture(scope="module")
def objects(live: Service) -> dict[str, dict[str, str]]:
    """alice's and bob's objects, one of each kind, made through the API."""
    made: dict[str, dict[str, str]] = {}
    for who in ("alice", "bob"):
        mine: dict[str, str] = {}
        with live.client(who) as client:
            for param, make in MAKERS.items():
                mine[param] = make(client, who, mine)
        made[who] = mine
    return made


# --- the matrix -------------------------------------------------------------------------


def test_routes_were_found() -> None:
    assert len(ROUTES) >= 10, "create_app's routes were not found; api_routes() is broken"
    assert {"/healthz", "/readyz", "/metrics", "/v1/me"} <= {r.path for r in ROUTES}


def _owned_thread(principal: MemoriesRead) -> str:
    return principal.user_id


_probe = APIRouter()


@_probe.get("/bare")
def _bare() -> None: ...


@_probe.get("/chat")
def _chat(principal: Chat) -> None: ...


@_probe.get("/nested")
def _nested(thread: Annotated[str, Depends(_owned_thread)]) -> None: ...


@_probe.get("/twice")
def _twice(principal: Chat, thread: Annotated[str, Depends(_owned_thread)]) -> None: ...


def test_principal_scopes_sees_through_dependencies() -> None:
    """The check below can fail: a bare route has none, a nested one is found."""
    app = FastAPI()
    app.include_router(_probe)
    found = {r.path: principal_scopes(r.dependant) for r in api_routes(app.routes)}
    assert found == {
        "/bare": set(),
        "/chat": {"chat"},
        "/nested": {"memories:read"},
        "/twice": {"chat", "memories:read"},
    }


@pytest.mark.parametrize("call", CALLS, ids=label)
def test_every_route_takes_exactly_one_principal(call: tuple[APIRoute, str]) -> None:
    route, _ = call
    scopes = principal_scopes(route.dependant)
    if route.path in PUBLIC:
        assert not scopes, f"{route.path} is public, yet takes a key"
    else:
        assert len(scopes) == 1, (
            f"{label(call)} takes {len(scopes)} principal dependencies; every route must "
            "take exactly one of AnyKey, Chat, MemoriesRead, MemoriesWrite, Admin "
            "(memshelf.service.auth), or be added to PUBLIC here with a reason."
        )


def _filled(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{", "").replace("}", "")  # any other parameter: its own name


def _stripped_of(scope: str | None) -> str:
    return "alice" if scope == "admin" else f"no:{scope}"


@pytest.mark.parametrize("call", PROTECTED, ids=label)
def test_keys_are_checked(live: Service, call: tuple[APIRoute, str]) -> None:
    route, method = call
    path = _filled(route.path, {})
    tokens = {
        "no key": None,
        "bad key": live.keys["alice"][:-4] + "0000",
        "revoked key": live.keys["revoked"],
    }
    with live.client(None) as anon:
        for what, token in tokens.items():
            headers = {"x-api-key": token} if token else {}
            answer = anon.request(method, path, headers=headers)
            assert answer.status_code == 401, f"{label(call)} with {what}: {answer.text}"
            assert answer.json()["detail"]
        (scope,) = principal_scopes(route.dependant)
        if scope is None:
            return  # any valid key will do: nothing to lack
        weak = live.keys[_stripped_of(scope)]
        answer = anon.request(method, path, headers={"Authorization": f"Bearer {weak}"})
        assert answer.status_code == 403, f"{label(call)} with a key lacking {scope}"
        assert scope in answer.json()["detail"]


def example(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A small valid instance of a JSON schema: required fields only, sensible values."""
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs, name)
    if name in FIELD_VALUES:
        return FIELD_VALUES[name]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example(options[0], defs, name)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example(props[k], defs, k) for k in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    text = "memshelf auth matrix"
    return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")


def body_of(route: APIRoute) -> Any:
    if route.body_field is None:
        return None
    annotation: Any = route.body_field.field_info.annotation
    schema = TypeAdapter(annotation).json_schema()
    return example(schema, schema.get("$defs", {}))


def variants(route: APIRoute, objects: dict[str, dict[str, str]]) -> Iterator[dict[str, str]]:
    """bob's objects in every owned parameter, then bob's in one and alice's in the rest."""
    params = [p.name for p in route.dependant.path_params]
    owned = [p for p in params if p not in NOT_OWNED]
    for param in owned:
        assert param in MAKERS, (
            f"{route.path}: no way to make another user's {param!r}. Add a maker to MAKERS "
            "(and a reader to READERS), or list it in NOT_OWNED with the reason."
        )
    fixed = {p: "agent" if p == "assistant_id" else "unused" for p in params if p in NOT_OWNED}
    yield {**fixed, **{p: objects["bob"][p] for p in owned}}
    if len(owned) > 1:
        for param in owned:
            yield {**fixed, **{p: objects["alice"][p] for p in owned}, param: objects["bob"][param]}


@pytest.mark.parametrize("call", OWNED, ids=label)
def test_another_users_object_is_not_found(
    live: Service, objects: dict[str, dict[str, str]], call: tuple[APIRoute, str]
) -> None:
    route, method = call
    body = body_of(route)
    with live.client("admin" if "admin" in principal_scopes(route.dependant) else "alice") as c:
        missing_values = {p: "no-such-object" for p in MAKERS} | {"assistant_id": "agent"}
        missing = c.request(method, _filled(route.path, missing_values), json=body)
        assert missing.status_code == 404, f"{label(call)} of a missing object: {missing.text}"
        for values in variants(route, objects):
            answer = c.request(method, _filled(route.path, values), json=body)
            assert answer.status_code == 404, f"{label(call)} with {values}: {answer.text}"
            assert answer.status_code == missing.status_code
            assert answer.json().keys() == missing.json().keys()
    with live.client("bob") as bob:  # and bob's objects are untouched
        for param, reader in READERS.items():
            assert bob.get(_filled(reader, objects["bob"])).status_code == 200, param


def test_openapi_shows_both_key_headers_and_every_error() -> None:
    app = create_app(Settings(data_dir=_UNUSED_DIR, chat_model="fake", embeddings="fake"))
    spec = app.openapi()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    assert {"in": "header", "name": "x-api-key"}.items() <= schemes["APIKeyHeader"].items()
    assert spec["components"]["schemas"]["Error"]["required"] == ["detail"]
    error = {"$ref": "#/components/schemas/Error"}
    for route, method in CALLS:
        operation = spec["paths"][route.path][method.lower()]
        answers = operation["responses"]
        if route.path in PUBLIC:
            assert "security" not in operation and "401" not in answers
            continue
        assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
        expected = {"401"} | ({"403"} if principal_scopes(route.dependant) != {None} else set())
        if route.dependant.path_params:
            expected.add("404")
        if route.body_field is not None:
            expected |= {"413", "422"}
        if calls_model(method, route.path):
            expected.add("429")
            assert "Retry-After" in answers["429"]["headers"]
        assert expected <= answers.keys(), f"{label((route, method))}: {sorted(answers)}"
        for code in expected - {"422"}:
            assert answers[code]["content"]["application/json"]["schema"] == error
