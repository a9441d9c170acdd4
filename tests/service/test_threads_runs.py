"""LangGraph-compatible threads and runs over raw HTTP: SSE framing, ownership, refusals,
and runs that stop (client gone, thread deleted) instead of running on for nobody."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from langchain_core.messages import BaseMessage

from memshelf.errors import ModelError
from memshelf.llm.fake import _answer_from_facts, rule_based_chat_model
from memshelf.service import create_app
from memshelf.service._runs import RunManager
from tests.service.conftest import Service, make_keys, running, service_settings


def _turn(text: str = "I deploy on Fly.io.", **extra: Any) -> dict[str, Any]:
    return {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": text}]},
        **extra,
    }


def _frames(raw: str) -> list[dict[str, str]]:
    """Split an event stream into frames, each a field → value map (comments dropped)."""
    frames = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if lines:
            frames.append(dict(line.split(": ", 1) for line in lines))
    return frames


def _create(client: httpx.Client, thread_id: str | None = None, **body: Any) -> dict[str, Any]:
    made = client.post("/threads", json={"thread_id": thread_id, **body} if thread_id else body)
    assert made.status_code == 200, made.text
    found: dict[str, Any] = made.json()
    return found


def test_sse_frames_have_event_data_and_id_metadata_first_end_last(service: Service) -> None:
    with service.client() as alice:
        thread = _create(alice)["thread_id"]
        body = _turn(stream_mode=["messages-tuple", "values", "updates"])
        with alice.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = response.read().decode()
    frames = _frames(raw)
    assert all(list(f) == ["event", "data", "id"] for f in frames), raw
    assert [int(f["id"]) for f in frames] == list(range(len(frames)))
    names = [f["event"] for f in frames]
    assert names[0] == "metadata" and names[-1] == "end" and names.count("end") == 1
    assert {"messages", "values", "updates"} <= set(names) and "error" not in names
    run_id = json.loads(frames[0]["data"])["run_id"]
    assert response.headers["content-location"] == f"/threads/{thread}/runs/{run_id}"
    assert response.headers["location"] == f"/threads/{thread}/runs/{run_id}/stream"
    message, meta = json.loads(next(f["data"] for f in frames if f["event"] == "messages"))
    assert message["type"] in ("ai", "AIMessageChunk") and meta["langgraph_node"] == "respond"
    final = json.loads([f["data"] for f in frames if f["event"] == "values"][-1])
    assert [m["type"] for m in final["messages"]] == ["human", "ai"]
    updates = [json.loads(f["data"]) for f in frames if f["event"] == "updates"]
    assert [next(iter(u)) for u in updates] == ["recall", "respond", "remember"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("values", {"values"}),
        ("updates", {"updates"}),
        ("messages-tuple", {"messages"}),
        ("messages", {"messages/metadata", "messages/complete"}),
    ],
)
def test_one_stream_mode_streams_only_its_events(
    sqlite_service: Service, mode: str, expected: set[str]
) -> None:
    with sqlite_service.client() as alice:
        thread = _create(alice)["thread_id"]
        url = f"/threads/{thread}/runs/stream"
        with connect_sse(alice, "POST", url, json=_turn(stream_mode=mode)) as source:
            events = [(e.event, e.id, e.data) for e in source.iter_sse()]
    names = [name for name, _, _ in events]
    assert names[0] == "metadata" and names[-1] == "end"
    assert set(names[1:-1]) == expected, names
    assert all(event_id for _, event_id, _ in events)
    if mode == "messages":
        complete = json.loads(next(d for n, _, d in events if n == "messages/complete"))
        assert complete[0]["type"] == "ai" and "know" in complete[0]["content"]


def _thread_routes(thread: str, run_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route that names a thread (and one of its runs)."""
    base = f"/threads/{thread}"
    run = f"{base}/runs/{run_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"metadata": {"x": 1}}),
        ("GET", f"{base}/state", None),
        ("POST", f"{base}/history", {"limit": 5}),
        ("GET", f"{base}/runs", None),
        ("POST", f"{base}/runs", _turn()),
        ("POST", f"{base}/runs/wait", _turn()),
        ("POST", f"{base}/runs/stream", _turn()),
        ("GET", run, None),
        ("GET", f"{run}/join", None),
        ("GET", f"{run}/stream", None),
        ("POST", f"{run}/cancel", None),
        ("DELETE", base, None),
    ]


def _answers(client: httpx.Client, thread: str, run_id: str) -> list[tuple[int, Any]]:
    return [
        ((r := client.request(method, url, json=body)).status_code, r.json())
        for method, url, body in _thread_routes(thread, run_id)
    ]


def test_another_users_thread_answers_exactly_like_a_missing_one(service: Service) -> None:
    with service.client("alice") as alice, service.client("bob") as bob:
        _create(alice, "diary", metadata={"owner": "alice"})
        told = alice.post("/threads/diary/runs/wait", json=_turn("My PIN hint is blue falcon."))
        run_id = told.headers["content-location"].rsplit("/", 1)[1]
        while_alice_has_it = _answers(bob, "diary", run_id)
        assert alice.get("/threads/diary").status_code == 200  # bob's DELETE did nothing
        assert "blue falcon" in json.dumps(alice.get("/threads/diary/state").json())
        assert alice.delete("/threads/diary").status_code == 204
        missing = _answers(bob, "diary", run_id)
    assert while_alice_has_it == missing
    assert {status for status, _ in missing} == {404}


def test_same_thread_name_for_two_users_is_two_threads(service: Service) -> None:
    with service.client("alice") as alice, service.client("bob") as bob:
        first = _create(alice, "shared", metadata={"who": "alice"})
        assert alice.post("/threads/shared/runs/wait", json=_turn()).status_code == 200
        theirs = _create(bob, "shared", metadata={"who": "bob"})  # not a conflict
        assert theirs["values"] is None and theirs["metadata"] == {"who": "bob"}
        again = alice.post("/threads", json={"thread_id": "shared"})
        assert again.status_code == 409
        kept = alice.post("/threads", json={"thread_id": "shared", "if_exists": "do_nothing"})
        assert kept.json()["created_at"] == first["created_at"]
        assert len(kept.json()["values"]["messages"]) == 2
        assert bob.get("/threads/shared/state").json()["values"] == {}
        bob_search = bob.post("/threads/search", json={}).json()
    assert [(t["thread_id"], t["metadata"]) for t in bob_search] == [("shared", {"who": "bob"})]


def test_bad_runs_are_refused_before_they_start(sqlite_service: Service) -> None:
    too_long = "x" * (sqlite_service.settings.max_message_chars + 1)
    with sqlite_service.client() as alice, sqlite_service.client("no:chat") as no_chat:
        _create(alice, "t")
        refused = {
            "unknown assistant": (_turn(assistant_id="other"), 404),
            "user from config": (_turn(config={"configurable": {"user_id": "bob"}}), 422),
            "resume command": (_turn(command={"resume": "x"}), 422),
            "assistant last": (
                {"assistant_id": "agent", "input": {"messages": [{"role": "ai", "content": "hi"}]}},
                422,
            ),
            "tool message": (
                {
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "tool", "content": "x"}]},
                },
                422,
            ),
            "no messages": ({"assistant_id": "agent", "input": {"messages": []}}, 422),
            "too long": (_turn(too_long), 413),
            "interrupt strategy": (_turn(multitask_strategy="interrupt"), 422),
        }
        for why, (body, status) in refused.items():
            answer = alice.post("/threads/t/runs/wait", json=body)
            assert answer.status_code == status, (why, answer.text)
            assert answer.json()["detail"], why
        assert alice.post("/threads/nope/runs/wait", json=_turn()).status_code == 404
        assert no_chat.post("/threads/t/runs/wait", json=_turn()).status_code == 403
        assert no_chat.post("/threads", json={}).status_code == 403
        assert alice.get("/threads/t/state").json()["values"] == {}  # nothing reached it
        assert alice.get("/threads/t/runs").json() == []
        made = alice.post("/threads/nope/runs/wait", json=_turn(if_not_exists="create"))
        assert made.status_code == 200 and alice.get("/threads/nope").status_code == 200


def test_join_stream_replays_a_run_and_resumes_after_last_event_id(sqlite_service: Service) -> None:
    with sqlite_service.client() as alice:
        _create(alice, "t")
        run = alice.post("/threads/t/runs", json=_turn(stream_mode=["values", "updates"])).json()
        assert run["status"] in ("pending", "running", "success")
        joined = alice.get(f"/threads/t/runs/{run['run_id']}/join").json()
        assert joined["messages"][-1]["type"] == "ai"
        url = f"/threads/t/runs/{run['run_id']}/stream"
        with connect_sse(alice, "GET", url) as source:
            whole = [(e.event, int(e.id)) for e in source.iter_sse()]
        with connect_sse(alice, "GET", url, headers={"Last-Event-ID": "2"}) as source:
            rest = [(e.event, int(e.id)) for e in source.iter_sse()]
        with connect_sse(alice, "GET", url, params={"stream_mode": "updates"}) as source:
            updates = [e.event for e in source.iter_sse()]
        assert alice.get(f"/threads/t/runs/{run['run_id']}").json()["status"] == "success"
    assert whole[0] == ("metadata", 0) and whole[-1][0] == "end"
    assert rest == whole[3:]
    assert set(updates) == {"metadata", "updates", "end"}


def test_stateless_run_leaves_no_thread(sqlite_service: Service) -> None:
    with sqlite_service.client() as alice:
        answer = alice.post("/runs/wait", json=_turn())
        assert answer.status_code == 200
        assert answer.json()["messages"][-1]["type"] == "ai"
        assert "content-location" not in answer.headers  # its thread is gone: no place
        assert alice.post("/threads/search", json={}).json() == []
        kept = alice.post("/runs/wait", json=_turn(on_completion="keep"))
        assert len(alice.post("/threads/search", json={}).json()) == 1
        assert kept.json()["messages"][-1]["type"] == "ai"


def test_assistants_agent_only(sqlite_service: Service) -> None:
    with sqlite_service.client() as alice:
        assert alice.get("/assistants/agent").json()["graph_id"] == "agent"
        assert alice.get("/assistants/other").status_code == 404
        found = alice.post("/assistants/search", json={"graph_id": "agent"}).json()
        assert [a["assistant_id"] for a in found] == ["agent"]
        assert alice.post("/assistants/search", json={"graph_id": "x"}).json() == []


# --- runs that must stop: a model held at a gate ------------------------------------------


@dataclass
class Gate:
    """A chat model that waits at a gate, so a test can act while a run is mid-turn."""

    entered: threading.Event
    release: threading.Event

    def respond(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        self.entered.set()
        self.release.wait(120)
        return _answer_from_facts(messages, kwargs)


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[Service]:
    """The service with a chat model that fails: as memshelf reports it, or unforeseen."""

    def respond(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        if "crash" in str(messages[-1].content):
            raise RuntimeError("internal detail /srv/secret.db")
        raise ModelError("The chat model is unavailable; check MEMSHELF_CHAT_MODEL.")

    settings = service_settings(tmp_path, "sqlite", None)
    keys = make_keys(settings)
    model = rule_based_chat_model()
    model.respond = respond
    with running(settings, create_app(settings, model=model)) as url:
        yield Service(url=url, settings=settings, keys=keys)


def test_a_failed_run_sends_error_then_end(failing: Service) -> None:
    with failing.client() as alice:
        _create(alice, "t")
        with connect_sse(alice, "POST", "/threads/t/runs/stream", json=_turn()) as source:
            events = [(e.event, e.data) for e in source.iter_sse()]
        waited = alice.post("/threads/t/runs/wait", json=_turn("crash now")).json()
        runs = alice.get("/threads/t/runs").json()
    names = [name for name, _ in events]
    assert names[0] == "metadata" and names[-2:] == ["error", "end"]
    assert json.loads(events[-2][1]) == {
        "error": "ModelError",
        "message": "The chat model is unavailable; check MEMSHELF_CHAT_MODEL.",
    }
    assert waited["__error__"]["error"] == "ModelError"  # the provider's failure, named
    assert "RuntimeError" in waited["__error__"]["message"]
    assert "secret" not in json.dumps(waited)  # an unforeseen error's text stays in the log
    assert [r["status"] for r in runs] == ["error", "error"]


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Service, Gate]]:
    settings = service_settings(tmp_path, "sqlite", None)
    keys = make_keys(settings)
    gate = Gate(threading.Event(), threading.Event())
    model = rule_based_chat_model()
    model.respond = gate.respond
    app = create_app(settings, model=model)
    try:
        with running(settings, app) as url:
            yield Service(url=url, settings=settings, keys=keys, app=app), gate
    finally:
        gate.release.set()


def _stopping(service: Service, thread: str, run_id: str) -> bool:
    """Whether the service has told the run to stop (it stops once the model answers)."""
    runs: RunManager = service.state.extras["runs"]
    return runs.find("alice", thread, run_id).stop.wait(60)


def _run_ids(client: httpx.Client, thread: str) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in client.get(f"/threads/{thread}/runs").json()}


def test_client_that_leaves_stops_its_run_and_frees_the_thread(
    gated: tuple[Service, Gate],
) -> None:
    service, gate = gated
    with service.client() as alice:
        _create(alice, "t")
        with connect_sse(alice, "POST", "/threads/t/runs/stream", json=_turn()) as source:
            events = source.iter_sse()  # kept: a dropped iterator closes the connection
            run_id = json.loads(next(events).data)["run_id"]
            assert gate.entered.wait(60)
            assert alice.get("/threads/t").json()["status"] == "busy"
        assert _stopping(service, "t", run_id)  # the stream closed before `end`
        gate.release.set()  # the model answers; the run stops instead of going on
        alice.get(f"/threads/t/runs/{run_id}/join")
        assert alice.get(f"/threads/t/runs/{run_id}").json()["status"] == "interrupted"
        assert alice.get("/threads/t").json()["status"] == "idle"
        assert alice.get("/threads/t/state").json()["next"] == ["remember"]  # never reached
        again = alice.post("/threads/t/runs/wait", json=_turn("Where do I deploy?"))
        assert again.status_code == 200 and again.json()["messages"][-1]["type"] == "ai"


def test_runs_on_one_thread_take_turns_or_are_refused(gated: tuple[Service, Gate]) -> None:
    service, gate = gated
    with service.client() as alice:
        _create(alice, "t")
        first = alice.post("/threads/t/runs", json=_turn("one")).json()
        assert gate.entered.wait(60)
        refused = alice.post("/threads/t/runs", json=_turn("two", multitask_strategy="reject"))
        assert refused.status_code == 409 and "in progress" in refused.json()["detail"]
        queued = alice.post("/threads/t/runs", json=_turn("three")).json()
        assert _run_ids(alice, "t") == {first["run_id"]: "running", queued["run_id"]: "pending"}
        gate.release.set()
        final = alice.get(f"/threads/t/runs/{queued['run_id']}/join").json()
        assert set(_run_ids(alice, "t").values()) == {"success"}
    said = [m["content"] for m in final["messages"] if m["type"] == "human"]
    assert said == ["one", "three"]


def test_deleting_a_thread_stops_its_run_first(gated: tuple[Service, Gate]) -> None:
    service, gate = gated
    with service.client() as alice:
        _create(alice, "t")
        run = alice.post("/threads/t/runs", json=_turn()).json()
        assert gate.entered.wait(60)
        deleted: list[int] = []

        def delete() -> None:
            with service.client() as other_connection:
                deleted.append(other_connection.delete("/threads/t").status_code)

        deleting = threading.Thread(target=delete)
        deleting.start()
        assert _stopping(service, "t", run["run_id"])
        gate.release.set()
        deleting.join(120)
        assert deleted == [204]
        assert alice.get("/threads/t").status_code == 404
        assert alice.get("/threads/t/state").status_code == 404
        assert alice.post("/threads/search", json={}).json() == []


def test_wait_whose_client_leaves_stops_its_run(gated: tuple[Service, Gate]) -> None:
    service, gate = gated
    with service.client() as alice:
        _create(alice, "t")
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and hangs up
            alice.post("/threads/t/runs/wait", json=_turn(), timeout=httpx.Timeout(60, read=1))
        assert gate.entered.wait(60)
        (run_id,) = _run_ids(alice, "t")
        assert _stopping(service, "t", run_id)
        gate.release.set()
        alice.get(f"/threads/t/runs/{run_id}/join")
        assert _run_ids(alice, "t") == {run_id: "interrupted"}


def test_cancel_stops_a_background_run(gated: tuple[Service, Gate]) -> None:
    from langgraph_sdk import get_sync_client

    service, gate = gated
    client = get_sync_client(url=service.url, api_key=service.keys["alice"])
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "agent", input={"messages": [{"role": "user", "content": "x"}]})
    assert gate.entered.wait(60)
    client.runs.cancel(tid, run["run_id"])
    gate.release.set()
    client.runs.join(tid, run["run_id"])
    assert client.runs.get(tid, run["run_id"])["status"] == "interrupted"


def test_forget_me_stops_the_users_runs_and_nothing_comes_back(
    gated: tuple[Service, Gate],
) -> None:
    service, gate = gated
    with service.client() as alice:
        run = alice.post(
            "/threads/f1/runs", json=_turn("My cat is called Tom.", if_not_exists="create")
        ).json()
        assert gate.entered.wait(60)
        forgot: list[httpx.Response] = []

        def forget() -> None:
            with service.client() as other_connection:
                forgot.append(other_connection.post("/v1/me/forget", json={"confirm": True}))

        forgetting = threading.Thread(target=forget)
        forgetting.start()
        assert _stopping(service, "f1", run["run_id"])  # forget stopped the run first
        meanwhile = alice.post("/threads/f2/runs", json=_turn("x", if_not_exists="create"))
        assert meanwhile.status_code == 409 and "forgotten" in meanwhile.json()["detail"]
        gate.release.set()
        forgetting.join(120)
        assert [r.status_code for r in forgot] == [200], forgot[0].text
        assert forgot[0].json()["threads"] == 1
        assert alice.get("/v1/threads").json() == []
        assert alice.post("/threads/search", json={}).json() == []
        assert alice.get("/threads/f1").status_code == 404
        memories = alice.get("/v1/memories", params={"wait_for_memory": "true"}).json()
        assert memories["items"] == [], memories
        assert service.state.store.search(("runs", "alice")) == []  # records name threads
        again = alice.post("/threads/f3/runs/wait", json=_turn(if_not_exists="create"))
        assert again.status_code == 200  # forgetting over: runs start again


def test_delete_refuses_while_a_run_outlasts_the_wait_and_the_thread_never_comes_back(
    gated: tuple[Service, Gate], monkeypatch: pytest.MonkeyPatch
) -> None:
    import memshelf.service._runs as runs_module
    import memshelf.service.routes.threads as thread_routes

    monkeypatch.setattr(runs_module, "STOP_RUNS_WAIT_S", 0.5, raising=False)
    monkeypatch.setattr(thread_routes, "STOP_RUNS_WAIT_S", 0.5, raising=False)  # older code
    service, gate = gated
    with service.client() as alice:
        _create(alice, "t")
        run = alice.post("/threads/t/runs", json=_turn()).json()
        assert gate.entered.wait(60)
        refused = alice.delete("/threads/t")  # the model holds the turn longer than the wait
        assert refused.status_code == 409, refused.text
        assert "cancel it and retry" in refused.json()["detail"]
        assert _stopping(service, "t", run["run_id"])
        gate.release.set()
        alice.get(f"/threads/t/runs/{run['run_id']}/join")
        assert alice.get(f"/threads/t/runs/{run['run_id']}").json()["status"] == "interrupted"
        assert alice.delete("/threads/t").status_code == 204
        assert alice.get("/threads/t").status_code == 404
        assert alice.post("/threads/search", json={}).json() == []


def test_another_user_cannot_touch_a_run_in_progress(gated: tuple[Service, Gate]) -> None:
    service, gate = gated
    with service.client("alice") as alice, service.client("bob") as bob:
        _create(alice, "diary")
        run = alice.post("/threads/diary/runs", json=_turn("My PIN hint is blue falcon.")).json()
        assert gate.entered.wait(60)
        while_running = _answers(bob, "diary", run["run_id"])
        runs: RunManager = service.state.extras["runs"]
        assert not runs.find("alice", "diary", run["run_id"]).stop.is_set()
        gate.release.set()
        joined = alice.get(f"/threads/diary/runs/{run['run_id']}/join").json()
        assert joined["messages"][-1]["type"] == "ai"
        assert alice.get(f"/threads/diary/runs/{run['run_id']}").json()["status"] == "success"
        assert "blue falcon" in json.dumps(alice.get("/threads/diary/state").json())
        assert alice.delete("/threads/diary").status_code == 204
        missing = _answers(bob, "diary", run["run_id"])
    assert while_running == missing  # status and the whole body, route by route
    assert {status for status, _ in missing} == {404}
