"""``memshelf ask`` stopped by SIGTERM, Ctrl-C (SIGINT) or SIGKILL at chosen moments.

Each case checks the three promises of an interrupted turn: one ``interrupted:`` line on
stderr and no traceback; the thread left after the turn (no run half-way, no unanswered
tool call); the message's fact on the shelf exactly once, with no job left in the
extraction journal — written before exit, or by the next command after a SIGKILL.
The model is the ``fake`` provider, patched in the child (:mod:`tests.faults._blocking`)
to block where the signal should land.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from memshelf.agent import open_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.memory.journal import JOBS_ROOT
from memshelf.ops.threads import open_threads, thread_messages
from memshelf.stores import open_store
from tests.faults._blocking import asking_until
from tests.faults._cli import lines, memshelf
from tests.faults.conftest import USER, cli_settings
from tests.faults.registry import fault

FACT = "My sister is called Ada"


def _signal_ask(data: Path, tmp_path: Path, at: str, sig: int) -> subprocess.CompletedProcess[str]:
    """``memshelf ask FACT``, sent ``sig`` once the fake model reaches ``at``."""
    with asking_until(data, tmp_path, FACT, at) as proc:
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 15, "winding down took longer than its bound"
    assert "Traceback" not in err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _ask(data: Path, message: str) -> list[str]:
    args = ["ask", "--user", USER, "--thread", "t", "--model", "fake", message]
    return lines(memshelf(*args, data=data))


def _facts(data: Path) -> list[str]:
    listed = lines(memshelf("memories", "list", "--user", USER, data=data))
    return [line for line in listed if "sister is called Ada" in line]


def _journal(data: Path) -> int:
    """Extraction jobs still in the journal (every user's): 0 once all are extracted."""
    with open_store(settings=cli_settings(data)) as store:
        return len(store.search((JOBS_ROOT,), filter={"kind": "job"}, limit=100))


def _thread(data: Path) -> tuple[list[str], tuple[str, ...]]:
    """The thread as `threads show` prints it, and the nodes its last run has left to run
    (LangGraph's own view: empty once the run finished)."""
    with open_threads(cli_settings(data)) as (_, saver):
        shown = [
            f"{'you' if m.type == 'human' else 'bot'}> {m.text}"
            for m in thread_messages(saver, USER, "t")
            if m.type in ("human", "ai") and m.text
        ]
    settings = cli_settings(data).model_copy(update={"chat_model": "fake"})
    with open_agent(settings=settings, tools=[], writer=_Idle()) as graph:
        pending = graph.get_state({"configurable": {"user_id": USER, "thread_id": "t"}}).next
    return shown, tuple(pending)


class _Idle:
    """A writer that does nothing: looking at a thread must not take the journal's jobs
    over (a real writer adopts a dead process's jobs as it starts)."""

    def submit(self, job: object) -> None:
        raise AssertionError("only looking")

    def status(self, user_id: str, thread_id: str) -> object:
        raise AssertionError("only looking")

    def wait(
        self, user_id: str, thread_id: str | None = None, timeout: float | None = None
    ) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        return None


@pytest.mark.parametrize(
    ("sig", "row"),
    [(signal.SIGTERM, "sigterm-during-answer"), (signal.SIGINT, "ctrl-c-during-answer")],
)
def test_a_turn_stopped_while_the_model_answers_is_settled_before_exit(
    data: Path, tmp_path: Path, sig: int, row: str
) -> None:
    _ask(data, "I live in Lisbon")
    result = _signal_ask(data, tmp_path, "answer", sig)
    assert result.returncode == 128 + sig, result.stderr
    assert result.stdout == ""
    said = result.stderr.splitlines()
    assert len(said) == 1 and said[0].startswith(fault(row).sees), said
    assert len(_facts(data)) == 1  # written before exit
    assert _journal(data) == 0
    shown, pending = _thread(data)
    assert shown[0] == "you> I live in Lisbon" and shown[-1] == f"you> {FACT}", shown
    assert pending == ()  # after the turn: nothing left half-way
    reply = _ask(data, "Who is my sister?")
    assert any("Ada" in line for line in reply), reply
    assert len(_facts(data)) == 1


def test_sigterm_during_extraction_says_so_and_writes_the_fact_once(
    data: Path, tmp_path: Path
) -> None:
    result = _signal_ask(data, tmp_path, "slow-extract", signal.SIGTERM)
    assert result.returncode == 143, result.stderr
    assert result.stdout.startswith("I don't know anything about you yet.")  # the reply came
    said = result.stderr.splitlines()
    assert len(said) == 1 and said[0].startswith(fault("sigterm-reply-given").sees), said
    assert len(_facts(data)) == 1
    assert _journal(data) == 0
    assert _thread(data)[1] == ()


def test_sigkill_while_the_model_answers_the_next_start_extracts_once(
    data: Path, tmp_path: Path
) -> None:
    _ask(data, "I live in Lisbon")
    result = _signal_ask(data, tmp_path, "answer", signal.SIGKILL)
    assert result.returncode == -signal.SIGKILL
    assert _facts(data) == []  # killed: nothing ran after the model
    assert _journal(data) == 1  # but the message waits in the journal
    assert _thread(data)[1] != ()  # and the thread is half-way through the turn
    reply = _ask(data, "Who is my sister?")  # the restart
    assert any("Ada" in line for line in reply), reply
    assert len(_facts(data)) == 1
    assert _journal(data) == 0
    shown, pending = _thread(data)
    assert pending == ()
    assert shown.count(f"you> {FACT}") == 1
    assert shown[-2] == "you> Who is my sister?"
    _ask(data, "Hello again")  # a second restart extracts nothing twice
    assert len(_facts(data)) == 1
    fault("sigkill-answer-restart")


# --- in-process: what an interrupt leaves in the thread -----------------------------------


@tool
def lookup(query: str) -> str:
    """Look something up."""
    raise KeyboardInterrupt  # Ctrl-C while the tool runs


def _tool_then_answer(messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
    if "tool_names" in kwargs and not any(m.type == "tool" for m in messages[-1:]):
        return AIMessage("", tool_calls=[{"name": "lookup", "args": {"query": "x"}, "id": "c1"}])
    return AIMessage(f"answer to: {messages[-1].content}")


def test_ctrl_c_during_a_tool_call_leaves_no_unanswered_call(tmp_path: Path) -> None:
    """Providers refuse a history with a tool call and no result: the call is dropped."""
    model = ScriptedChatModel(respond=_tool_then_answer, structured=lambda m, s: s(facts=[]))
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake")
    config = {"configurable": {"user_id": USER, "thread_id": "t1"}}
    with (
        open_store(str(tmp_path / "s.db"), settings=settings) as store,
        open_agent(
            store=store,
            checkpointer=InMemorySaver(),
            model=model,
            tools=[lookup],
            settings=settings,
        ) as graph,
    ):
        with pytest.raises(KeyboardInterrupt):
            run_turn(graph, USER, "t1", "Look it up")
        state = graph.get_state(config)
        assert state.next == ()
        assert [type(m) for m in state.values["messages"]] == [HumanMessage]
        model.respond = lambda messages, kwargs: f"answer to: {messages[-1].content}"
        assert run_turn(graph, USER, "t1", "And now?").reply == "answer to: And now?"
    fault("ctrl-c-during-tool")


# --- the service: SIGTERM while a turn's memories are being extracted ------------------------


def test_sigterm_to_serve_mid_extraction_writes_the_fact_once(tmp_path: Path) -> None:
    """An orchestrator stops `memshelf serve` (SIGTERM) while its in-process writer
    extracts: the service exits cleanly, after the fact is written once."""
    import httpx

    from tests.service.conftest import make_keys, serve_env, serve_process
    from tests.service.test_runs_multiprocess import SLOW_SERVE, _sqlite, _turn

    settings = _sqlite(tmp_path)
    headers = {"x-api-key": make_keys(settings)["alice"]}
    env = serve_env(settings, MEMSHELF_EXTRACTION_WORKER="true", TEST_EXTRACT_S="3")
    log = tmp_path / "serve.log"
    with (
        serve_process(settings, log, code=SLOW_SERVE, env=env) as served,
        httpx.Client(base_url=served.url, headers=headers, timeout=120) as client,
    ):
        told = client.post("/threads/t1/runs/wait", json=_turn(FACT))
        assert told.status_code == 200, told.text
    # leaving the block sent SIGTERM and asserted a clean exit, mid-extraction
    assert "Traceback" not in log.read_text()
    with open_store(settings=settings) as store:
        from memshelf.ops.memories import list_memories

        texts = [str(i.value["text"]) for i in list_memories(store, "alice").items]
        jobs = store.search((JOBS_ROOT,), filter={"kind": "job"}, limit=100)
    assert sum("sister is called Ada" in t for t in texts) == 1, texts
    assert jobs == []
    fault("sigterm-serve-extracting")
