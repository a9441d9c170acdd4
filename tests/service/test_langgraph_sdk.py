"""The official ``langgraph-sdk`` client, unchanged, against a real memshelf service.

Async (``get_client``) and sync (``get_sync_client``) clients, on SQLite and on Redis:
threads, streamed runs in LangGraph's event shapes, wait, create + join, state, search,
delete; another user's thread is not found (the same answer as a missing one); and the
acceptance flow — a fact told in thread A is recalled in thread B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from memshelf.config import Settings
from memshelf.memory.shelf import list_facts
from memshelf.stores import open_store
from tests.conftest import REAL_MODEL_DIR
from tests.service.conftest import Service, make_keys, running, service_settings

FACT = "I deploy on Fly.io."


def _said(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _texts(values: dict[str, Any], kind: str) -> list[str]:
    return [m["content"] for m in values["messages"] if m["type"] == kind]


async def test_async_client_threads_and_streamed_runs(service: Service) -> None:
    client = get_client(url=service.url, api_key=service.keys["alice"])
    thread = await client.threads.create(metadata={"project": "memshelf"})
    assert thread["status"] == "idle" and thread["metadata"] == {"project": "memshelf"}
    tid = thread["thread_id"]

    parts = [
        part
        async for part in client.runs.stream(
            tid,
            "agent",
            input=_said("Hello there."),
            stream_mode=["messages-tuple", "values", "updates"],
        )
    ]
    names = [p.event for p in parts]
    assert names[0] == "metadata" and names[-1] == "end"
    assert set(names) == {"metadata", "messages", "values", "updates", "end"}
    run_id = parts[0].data["run_id"]
    assert all(p.id is not None for p in parts)
    chunk, meta = next(p.data for p in parts if p.event == "messages")
    assert chunk["type"] in ("ai", "AIMessageChunk") and chunk["content"]
    assert meta["langgraph_node"] == "respond"
    last_values = [p.data for p in parts if p.event == "values"][-1]
    assert _texts(last_values, "human") == ["Hello there."]
    assert _texts(last_values, "ai") == [chunk["content"]]
    assert [next(iter(p.data)) for p in parts if p.event == "updates"] == [
        "recall",
        "respond",
        "remember",
    ]

    waited = await client.runs.wait(tid, "agent", input=_said("Second message."))
    assert _texts(waited, "human") == ["Hello there.", "Second message."]

    run = await client.runs.create(tid, "agent", input=_said("Third message."))
    assert run["thread_id"] == tid and run["assistant_id"] == "agent"
    joined = await client.runs.join(tid, run["run_id"])
    assert _texts(joined, "human")[-1] == "Third message."
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    listed = await client.runs.list(tid)
    assert [r["run_id"] for r in listed][:1] == [run["run_id"]]  # newest first
    assert run_id in {r["run_id"] for r in listed}

    state = await client.threads.get_state(tid)
    assert len(state["values"]["messages"]) == 6 and state["next"] == []
    assert state["checkpoint"]["thread_id"] == tid
    history = await client.threads.get_history(tid, limit=3)
    assert len(history) == 3 and history[0]["checkpoint"] == state["checkpoint"]

    updated = await client.threads.update(tid, metadata={"stage": "done"})
    assert updated["metadata"] == {"project": "memshelf", "stage": "done"}
    got = await client.threads.get(tid)
    assert got["values"]["messages"][-1]["type"] == "ai"

    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)


async def test_async_client_singleton_stream_modes(service: Service) -> None:
    client = get_client(url=service.url, api_key=service.keys["alice"])
    tid = (await client.threads.create())["thread_id"]
    seen = {}
    for mode in ("values", "updates", "messages", "messages-tuple"):
        parts = [
            p async for p in client.runs.stream(tid, "agent", input=_said(mode), stream_mode=mode)
        ]
        seen[mode] = {p.event for p in parts} - {"metadata", "end"}
    assert seen == {
        "values": {"values"},
        "updates": {"updates"},
        "messages": {"messages/metadata", "messages/complete"},
        "messages-tuple": {"messages"},
    }


def test_sync_client_search_lists_only_the_callers_threads(service: Service) -> None:
    alice = get_sync_client(url=service.url, api_key=service.keys["alice"])
    bob = get_sync_client(url=service.url, api_key=service.keys["bob"])
    mine = [alice.threads.create(metadata={"tag": "x", "n": n})["thread_id"] for n in range(3)]
    alice.threads.create(metadata={"tag": "y"})
    theirs = bob.threads.create(thread_id=mine[0], metadata={"tag": "x"})  # a name in use
    assert theirs["thread_id"] == mine[0] and theirs["values"] is None

    found = alice.threads.search(metadata={"tag": "x"}, limit=10)
    assert sorted(t["thread_id"] for t in found) == sorted(mine)
    assert len(alice.threads.search(metadata={"tag": "x"}, limit=2, offset=2)) == 1
    assert [t["metadata"] for t in bob.threads.search()] == [{"tag": "x"}]

    with pytest.raises(ConflictError):
        alice.threads.create(thread_id=mine[1])
    same = alice.threads.create(thread_id=mine[1], if_exists="do_nothing")
    assert same["metadata"] == {"tag": "x", "n": 1}

    parts = list(alice.runs.stream(mine[1], "agent", input=_said("Hi."), stream_mode="values"))
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    run = alice.runs.create(mine[1], "agent", input=_said("Again."))
    assert _texts(alice.runs.join(mine[1], run["run_id"]), "human") == ["Hi.", "Again."]
    assert alice.threads.get_state(mine[1])["values"]["messages"][-1]["type"] == "ai"
    with pytest.raises(httpx.HTTPStatusError) as refused:  # wait raises httpx's own error
        alice.runs.wait(
            mine[1], "agent", input=_said("x"), config={"configurable": {"user_id": "bob"}}
        )
    assert refused.value.response.status_code == 422
    alice.threads.delete(mine[1])
    assert mine[1] not in {t["thread_id"] for t in alice.threads.search(limit=100)}


def _bob_tries(bob: Any, tid: str, run_id: str) -> list[tuple[str, int, Any]]:
    """Everything bob can do to a thread by name, with the answer he gets."""
    attempts = {
        "get": lambda: bob.threads.get(tid),
        "state": lambda: bob.threads.get_state(tid),
        "history": lambda: bob.threads.get_history(tid),
        "update": lambda: bob.threads.update(tid, metadata={"x": 1}),
        "stream": lambda: list(bob.runs.stream(tid, "agent", input=_said("show me"))),
        "wait": lambda: bob.runs.wait(tid, "agent", input=_said("show me")),
        "create": lambda: bob.runs.create(tid, "agent", input=_said("show me")),
        "join": lambda: bob.runs.join(tid, run_id),
        "get run": lambda: bob.runs.get(tid, run_id),
        "list runs": lambda: bob.runs.list(tid),
        "delete": lambda: bob.threads.delete(tid),
    }
    answers = []
    for name, attempt in attempts.items():
        with pytest.raises(httpx.HTTPStatusError) as raised:  # NotFoundError, or httpx's own
            attempt()
        answers.append((name, raised.value.response.status_code, raised.value.response.json()))
    return answers


def test_bob_cannot_reach_alices_thread_it_is_simply_not_there(service: Service) -> None:
    alice = get_sync_client(url=service.url, api_key=service.keys["alice"])
    bob = get_sync_client(url=service.url, api_key=service.keys["bob"])
    tid = alice.threads.create(metadata={"secret": True})["thread_id"]
    run = alice.runs.create(tid, "agent", input=_said("My PIN hint is blue falcon."))
    alice.runs.join(tid, run["run_id"])

    while_it_exists = _bob_tries(bob, tid, run["run_id"])
    assert "blue falcon" in str(alice.threads.get_state(tid)["values"])  # bob changed nothing
    assert bob.threads.search() == []
    alice.threads.delete(tid)
    assert _bob_tries(bob, tid, run["run_id"]) == while_it_exists


async def test_fact_told_in_thread_a_is_recalled_in_thread_b(service: Service) -> None:
    client = get_client(url=service.url, api_key=service.keys["alice"])
    first = (await client.threads.create())["thread_id"]
    await client.runs.wait(first, "agent", input=_said(FACT), params={"wait_for_memory": True})
    with open_store(settings=service.settings) as store:  # read-your-writes: already there
        assert [f.value["text"] for f in list_facts(store, "alice")] == ["I deploy on Fly.io"]

    second = (await client.threads.create())["thread_id"]
    parts = [
        p
        async for p in client.runs.stream(
            second, "agent", input=_said("Where do I deploy?"), stream_mode="values"
        )
    ]
    final = parts[-2].data  # the last values event, before `end`
    assert [r["text"] for r in final["recalled"]] == ["I deploy on Fly.io"]
    reply = _texts(final, "ai")[-1]
    assert "Fly.io" in reply and reply.startswith("From memory")  # it reached the prompt
    assert "Earlier here" not in reply  # thread B's history never held thread A's message

    bob = get_client(url=service.url, api_key=service.keys["bob"])
    theirs = (await bob.threads.create())["thread_id"]
    answer = await bob.runs.wait(theirs, "agent", input=_said("Where do I deploy?"))
    assert answer["recalled"] == [] and "Fly.io" not in str(answer)


async def test_stateless_run_and_unknown_assistant(service: Service) -> None:
    client = get_client(url=service.url, api_key=service.keys["alice"])
    answer = await client.runs.wait(None, "agent", input=_said("Just once."))
    assert _texts(answer, "human") == ["Just once."]
    assert await client.threads.search() == []
    assert (await client.assistants.get("agent"))["graph_id"] == "agent"
    with pytest.raises(NotFoundError):
        await client.assistants.get("someone-else")
    tid = (await client.threads.create())["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        await client.runs.wait(tid, "someone-else", input=_said("hi"))
    assert unknown.value.response.status_code == 404


@pytest.mark.real_llm
def test_real_model_streams_tokens_as_message_chunks(tmp_path: Path) -> None:
    """The same stream with the local chat model: ``messages`` events are token chunks
    that add up to the reply the thread keeps."""
    settings = service_settings(tmp_path, "sqlite", None).model_copy(
        update={"chat_model": Settings().chat_model, "models_dir": REAL_MODEL_DIR}
    )
    keys = make_keys(settings)
    with running(settings) as url:
        client = get_sync_client(url=url, api_key=keys["alice"])
        tid = client.threads.create()["thread_id"]
        question = _said("In one short sentence: what is the capital of France?")
        parts = list(
            client.runs.stream(tid, "agent", input=question, stream_mode=["messages-tuple"])
        )
        final = client.threads.get_state(tid)["values"]["messages"][-1]
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    chunks = [chunk for chunk, meta in (p.data for p in parts if p.event == "messages")]
    assert len(chunks) > 1 and {c["type"] for c in chunks} == {"AIMessageChunk"}
    assert "".join(c["content"] for c in chunks).strip() == final["content"].strip()
    assert "Paris" in final["content"]
