"""Request limits on a live service: body size (413 naming the limit, before the body is
read), per-key rate on the routes that call a model (agent runs, a team's ask and a
finding's verification: 429 + Retry-After), 422 for bodies that cannot be parsed — never
a 500."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from memshelf.config import Settings
from memshelf.service import create_app
from memshelf.service.app import api_routes
from memshelf.service.limits import RateLimiter, calls_model
from tests.service.conftest import TEAMS, Service, make_keys, running, service_settings

LIMIT = 50_000
PER_MINUTE = 3
RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Service]:
    """The service with a small body limit and a small run rate."""
    settings = service_settings(tmp_path, "sqlite", None).model_copy(
        update={"max_request_bytes": LIMIT, "rate_limit_per_minute": PER_MINUTE}
    )
    keys = make_keys(settings)
    with running(settings) as url:
        yield Service(url=url, settings=settings, keys=keys)


def test_declared_oversize_body_is_refused_before_it_is_sent(limited: Service) -> None:
    """Only the headers go out: a 413 that comes back proves the body was never awaited."""
    url = urlsplit(limited.url)
    head = (
        f"POST /v1/memories/import HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"x-api-key: {limited.keys['alice']}\r\ncontent-type: application/json\r\n"
        f"Content-Length: {50 * LIMIT}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(head.encode())
        reply = b""
        while chunk := conn.recv(65536):  # the server closes: the body is never wanted
            reply += chunk
        text = reply.decode()
    status_line, _, rest = text.partition("\r\n")
    assert " 413 " in status_line, text
    assert f"{LIMIT:,} bytes" in rest and "MEMSHELF_MAX_REQUEST_BYTES" in rest


def test_chunked_oversize_body_is_cut_at_the_limit(limited: Service) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(200):  # 20x the limit, without a Content-Length
            sent += 5_000
            yield b" " * 5_000

    with limited.client("alice") as alice:
        answer = alice.post(
            "/v1/memories/import", content=chunks(), headers={"content-type": "application/json"}
        )
    assert answer.status_code == 413, answer.text
    assert f"{LIMIT:,} bytes" in answer.json()["detail"]
    assert answer.headers["x-request-id"]


def test_body_under_the_limit_is_read(limited: Service) -> None:
    padded = '{"text": "Prefers green tea"}'.ljust(LIMIT - 100)
    with limited.client("alice") as alice:
        answer = alice.post(
            "/v1/memories", content=padded, headers={"content-type": "application/json"}
        )
    assert answer.status_code in (200, 201), answer.text


BAD_BODIES = {  # name: (body, status); bodies are sent to each route below
    "broken": (b"{not json", 422),
    "wrong-type": (b'{"text": 12, "metadata": 12, "namespace_prefix": 12}', 422),
    "wrong-shape": (b"[]", 422),
    "nan": (b'{"text": NaN, "metadata": NaN, "namespace_prefix": NaN}', 422),
    "lone-surrogate": (b'{"text": "\\ud800", "metadata": "\\ud800", "limit": "\\ud800"}', 422),
    "not-utf8": (b"\xff\xfe\x00", 400),  # FastAPI's own answer: the body is not text
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_invalid_bodies_are_4xx_never_500(sqlite_service: Service, name: str) -> None:
    body, status = BAD_BODIES[name]
    with sqlite_service.client("alice") as alice:
        for path in ("/v1/memories", "/threads", "/store/items/search"):
            answer = alice.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == status, (path, answer.status_code, answer.text)
            assert answer.json()["detail"]


def test_model_runs_are_rate_limited_per_key(limited: Service) -> None:
    with limited.client("alice") as alice, limited.client("bob") as bob:
        thread = alice.post("/threads", json={}).json()["thread_id"]
        for _ in range(PER_MINUTE):
            assert alice.post(f"/threads/{thread}/runs/wait", json=RUN).status_code == 200
        refused = alice.post(f"/threads/{thread}/runs/wait", json=RUN)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "MEMSHELF_RATE_LIMIT_PER_MINUTE" in refused.json()["detail"]
        assert alice.post("/runs/wait", json=RUN).status_code == 429  # every model route
        assert alice.get("/v1/me").status_code == 200  # routes without a model are not
        assert alice.get(f"/threads/{thread}").status_code == 200
        own = bob.post("/threads", json={}).json()["thread_id"]
        assert bob.post(f"/threads/{own}/runs/wait", json=RUN).status_code == 200  # per key
    with limited.client(None) as anon:  # no key: 401 first, and it spends nobody's quota
        assert anon.post(f"/threads/{thread}/runs/wait", json=RUN).status_code == 401


def test_team_ask_and_verify_spend_the_same_run_quota(limited: Service) -> None:
    """A team's ask and a finding's verification call the model: each admitted request
    spends one run of the key's quota (before the route looks at the team or the body)."""
    alpha = TEAMS["alice"]
    verify = f"/v1/teams/{alpha}/findings/fd_missing/verify"
    ask = f"/v1/teams/{alpha}/ask"
    with limited.client("alice") as alice, limited.client("no:chat") as no_chat:
        for _ in range(PER_MINUTE):
            assert alice.post(verify).status_code == 404  # admitted, then not found
        refused = alice.post(verify)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "MEMSHELF_RATE_LIMIT_PER_MINUTE" in refused.json()["detail"]
        assert alice.post(ask, json={"question": "How long do bees live?"}).status_code == 429
        assert alice.post("/runs/wait", json=RUN).status_code == 429  # one quota for all
        assert alice.get(f"/v1/teams/{alpha}/findings").status_code == 200  # no model: free
        for _ in range(PER_MINUTE):  # a key without `chat` is admitted, then refused 403
            assert no_chat.post(ask, json={"question": "hi"}).status_code == 403
        assert no_chat.post(ask, json={"question": "hi"}).status_code == 429
    with limited.client("bob") as bob:  # another key has its own quota
        assert bob.post(f"/v1/teams/{TEAMS['bob']}/findings/fd_missing/verify").status_code == 404


# The model-calling routes memshelf serves (LangGraph's runs, the team's ask and verify).
# A new route that calls the model must be added here, and matched by limits.calls_model.
MODEL_ROUTES = {
    ("POST", "/threads/{thread_id}/runs"),
    ("POST", "/threads/{thread_id}/runs/stream"),
    ("POST", "/threads/{thread_id}/runs/wait"),
    ("POST", "/runs"),
    ("POST", "/runs/stream"),
    ("POST", "/runs/wait"),
    ("POST", "/v1/teams/{team}/ask"),
    ("POST", "/v1/teams/{team}/findings/{finding_id}/verify"),
}


def test_rate_limit_covers_exactly_the_routes_that_start_runs() -> None:
    app = create_app(Settings(data_dir=Path("/nonexistent"), chat_model="fake", embeddings="fake"))
    limited = {
        (method, route.path)
        for route in api_routes(app.routes)
        for method in route.methods or ()
        if calls_model(method, route.path)
    }
    assert limited == MODEL_ROUTES
    assert not calls_model("POST", "/threads/{thread_id}/runs/{run_id}/cancel")
    assert not calls_model("GET", "/threads/{thread_id}/runs")


def test_rate_limiter_refills_evenly() -> None:
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # one run every 10 s, 6 at once
    assert [limiter.take("k") for _ in range(6)] == [0.0] * 6
    assert limiter.take("k") == pytest.approx(10.0)
    assert limiter.take("other") == 0.0
    now[0] = 4.0
    assert limiter.take("k") == pytest.approx(6.0)  # a refusal spends nothing
    now[0] = 10.0
    assert limiter.take("k") == 0.0
    assert limiter.take("k") > 0
    assert RateLimiter(0).take("k") == 0.0  # 0: no limit


# --- odd input that used to reach a 500 (review of issue 13, finding 4) --------------------

JSON = {"content-type": "application/json"}


def _frames(text: str) -> list[tuple[str, str]]:
    """(event, data) of each SSE frame."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], fields.get("data", "")))
    return found


@pytest.mark.parametrize("seen", ["\xb2".encode("latin-1"), b"9" * 5000, b"1" * 19])
def test_a_last_event_id_this_service_never_sent_replays_from_the_start(
    sqlite_service: Service, seen: bytes
) -> None:
    """'²' is a digit to str.isdigit and 5000 digits are too many for int(): both were 500."""
    with sqlite_service.client("alice") as alice:
        run = alice.post("/threads/lei/runs", json={**RUN, "if_not_exists": "create"}).json()
        alice.get(f"/threads/lei/runs/{run['run_id']}/join")
        path = f"/threads/lei/runs/{run['run_id']}/stream"
        whole = alice.get(path)
        again = alice.get(path, headers={"Last-Event-ID": seen})  # type: ignore[dict-item]
        assert again.status_code == 200 and _frames(again.text) == _frames(whole.text)
        resumed = alice.get(path, headers={"Last-Event-ID": "0"})
        assert _frames(resumed.text) == _frames(whole.text)[1:]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"before": {"checkpoint_id": {"x": 1}}}, "'before'"),
        ({"before": {"checkpoint_id": 7}}, "'before'"),
        ({"metadata": {"a'": 1}}, "filter key"),
        ({"metadata": {"": 1}}, "filter key"),
    ],
)
def test_history_with_an_unusable_before_or_filter_is_422(
    sqlite_service: Service, body: dict[str, object], named: str
) -> None:
    with sqlite_service.client("alice") as alice:
        alice.post("/threads/h/runs/wait", json={**RUN, "if_not_exists": "create"})
        answer = alice.post("/threads/h/history", json=body)
        assert answer.status_code == 422 and named in answer.json()["detail"], answer.text
        assert len(alice.post("/threads/h/history", json={"metadata": {"step": 1}}).json()) == 1


def test_nan_in_a_run_input_never_makes_invalid_json(sqlite_service: Service) -> None:
    """Python's parser takes NaN; /runs/wait then failed ("Out of range float") and the SSE
    stream sent NaN, which no JSON parser reads. They are written as null."""
    body = (
        b'{"assistant_id": "agent", "if_not_exists": "create", "input": {"messages": [{"role":'
        b' "user", "content": [{"type": "text", "text": "hello there", "x": NaN}]}]}}'
    )
    with sqlite_service.client("alice") as alice:
        waited = alice.post("/threads/nan/runs/wait", content=body, headers=JSON)
        assert waited.status_code == 200, waited.text
        assert json.loads(waited.text, parse_constant=_refuse)["messages"][-1]["type"] == "ai"
        streamed = alice.post("/threads/nan/runs/stream", content=body, headers=JSON)
        for _event, data in _frames(streamed.text):
            json.loads(data, parse_constant=_refuse)
        for path in ("/threads/nan/state", "/threads/nan"):
            shown = alice.get(path)
            assert shown.status_code == 200
            json.loads(shown.text, parse_constant=_refuse)


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in a JSON answer")
