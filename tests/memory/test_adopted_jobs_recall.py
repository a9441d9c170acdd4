"""The turn after an interrupted one recalls what the interrupted message said (issue 17).

A process stopped before its writer extracted a message leaves the job in the journal;
the next agent adopts it. Its first turn's recall must wait for that job, like for the
user's own pending ones, instead of racing the adoption and answering without the fact.
Real SQLite file, real journal, the fake chat model; the dead writer's lease names a
process that really ended.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

import memshelf.agent.nodes as nodes
from memshelf.agent import build_agent, close_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.embeddings import FakeEmbedder
from memshelf.llm.fake import rule_based_chat_model
from memshelf.memory import ExtractionJob, list_facts
from memshelf.memory.journal import HOST, JOBS_ROOT, WRITERS_ROOT, JobJournal
from memshelf.stores.sqlite import SqliteStore

USER = "tom"
FACT = "My dog is called Rex"
DEAD = "deadwriter01"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    with SqliteStore(tmp_path / "shelf.db", index=index) as opened:
        yield opened


def _leave_job_of_a_killed_process(store: SqliteStore) -> None:
    """What `memshelf ask -t X FACT` stopped mid-answer leaves: the message journalled,
    owned by a writer whose lease is still fresh but whose process has ended."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait(30)
    job = ExtractionJob(user_id=USER, thread_id="X", message_id="m1", text=FACT + ".")
    assert JobJournal(store, DEAD).record(job)
    lease = {
        "alive_until": time.time() + 30,
        "closed": False,
        "pid": ended.pid,
        "started": "1",
        "host": HOST,
    }
    store.put((WRITERS_ROOT,), DEAD, lease, index=False)


def _slow_sweep(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """A store slow to answer the first look for dead writers' jobs: the turn's recall
    then starts before the adoption, which is the race the user hit."""
    stranded: Callable[[JobJournal], Any] = JobJournal.stranded

    def slow(self: JobJournal) -> Any:
        time.sleep(seconds)
        return stranded(self)

    monkeypatch.setattr(JobJournal, "stranded", slow)


def _agent(store: SqliteStore, tmp_path: Path, model: Any) -> Any:
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
    return build_agent(
        store=store, checkpointer=InMemorySaver(), model=model, tools=[], settings=settings
    )


def test_the_next_turn_recalls_the_adopted_jobs_fact(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leave_job_of_a_killed_process(store)
    _slow_sweep(monkeypatch, 0.5)
    graph = _agent(store, tmp_path, rule_based_chat_model())
    try:
        result = run_turn(graph, USER, "Y", "What is my dog called?")
    finally:
        close_agent(graph)
    assert [f["text"] for f in result.recalled] == [FACT]
    assert "Rex" in result.reply
    assert [i.value["text"] for i in list_facts(store, USER)] == [FACT]
    assert store.search((JOBS_ROOT,), filter={"kind": "job"}) == []  # adopted and finished


def test_recall_that_times_out_on_an_adopted_job_tells_the_model_not_to_guess(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leave_job_of_a_killed_process(store)
    _slow_sweep(monkeypatch, 1.0)
    monkeypatch.setattr(nodes, "RECALL_WAIT_S", 0.2)
    model = rule_based_chat_model()
    graph = _agent(store, tmp_path, model)
    try:
        result = run_turn(graph, USER, "Y", "What is my dog called?")
    finally:
        close_agent(graph)
    assert result.recalled == []
    prompt = "\n".join(str(m.content) for m in model.calls[0] if isinstance(m, SystemMessage))
    assert nodes.PENDING_NOTE in prompt
    assert "don't know yet" in nodes.PENDING_NOTE and "guess" in nodes.PENDING_NOTE
    assert [i.value["text"] for i in list_facts(store, USER)] == [FACT]  # written after all
