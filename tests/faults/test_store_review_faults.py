"""Faults from the store review (issues 12 and 17): a stalled Redis, a damaged threads
file, and a bug in building the prompt, each reported as what it is."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from memshelf.agent.graph import default_checkpointer
from memshelf.agent.nodes import Nodes
from memshelf.config import Settings
from memshelf.errors import ModelError, StoreFileError, StoreUnavailableError
from memshelf.llm.fake import ScriptedChatModel
from memshelf.stores import open_store
from memshelf.testing import redis_process

NS = ("memories", "u")


def test_a_stalled_redis_fails_calls_instead_of_hanging_them(tmp_path: Path) -> None:
    """A server that stops answering (SIGSTOP: a stalled host, a black-holed network)
    fails a call with StoreUnavailableError after the socket timeout and its retries; once
    it answers again, so does the store. A server of its own: others' tests go on."""
    settings = Settings(
        data_dir=tmp_path / "data",
        embeddings="fake",
        redis_prefix="stall",
        redis_socket_timeout=0.5,
    )
    with redis_process() as server:
        store = open_store(server.url, settings=settings)
        try:
            store.put(NS, "k", {"text": "tea"})
            outcome: list[BaseException | object] = []

            def get() -> None:
                try:
                    outcome.append(store.get(NS, "k"))
                except BaseException as exc:  # what the call raised is the result
                    outcome.append(exc)

            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                call = threading.Thread(target=get, daemon=True)
                call.start()
                call.join(timeout=30)  # 4 tries of 0.5 s, and backoff: far less
                failed_by_itself = not call.is_alive()
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            call.join(timeout=30)
            assert failed_by_itself
            assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailableError)
            assert "MEMSHELF_REDIS_SOCKET_TIMEOUT" in str(outcome[0])
            item = store.get(NS, "k")
            assert item is not None and item.value["text"] == "tea"
        finally:
            store.close()


def test_a_damaged_threads_file_says_to_move_it_aside(tmp_path: Path) -> None:
    """The store's advice (another --store, an export) would not touch the threads file."""
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "checkpoints.db").write_bytes(b"not a database at all " * 300)
    with pytest.raises(StoreFileError) as caught:
        default_checkpointer(settings)
    message = str(caught.value)
    assert "threads file" in message and "damaged" in message
    assert "Move it aside" in message and "memories are in the store file" in message
    assert "--store" not in message and "export" not in message


def test_a_bug_building_the_prompt_is_not_a_chat_model_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ScriptedChatModel(respond=lambda messages, kwargs: "hello")
    nodes = Nodes(model, tools=[], recall_k=5, max_rounds=2)

    def broken(state: object) -> list[object]:
        raise KeyError("memories")

    monkeypatch.setattr(nodes, "prompt", broken)
    with pytest.raises(KeyError) as caught:
        nodes.respond({"messages": [HumanMessage("hi")]}, {})  # type: ignore[typeddict-item]
    assert not isinstance(caught.value, ModelError)
