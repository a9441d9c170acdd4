"""What a long-running service must say and bound: a ``wait_for_memory`` that ran out is
said in the answer, finished runs' events do not pile up in memory, and the Redis
extraction worker's concurrency is a setting (in the service) and an option (the CLI)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import memshelf.memory.writer as writer_module
from memshelf.config import Settings
from memshelf.errors import NotFoundError
from memshelf.llm.fake import rule_based_chat_model
from memshelf.memory.queue import ExtractionWorker
from memshelf.service._runs import run_manager
from memshelf.service.routes import memories as memory_routes
from memshelf.service.routes import runs as run_routes
from tests.service.conftest import Service

PENDING = "Memshelf-Memory-Pending"


def _turn(text: str) -> dict[str, Any]:
    return {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": text}]},
        "if_not_exists": "create",
    }


def _events(response: httpx.Response) -> list[str]:
    return [line[7:] for line in response.iter_lines() if line.startswith("event: ")]


@pytest.fixture
def stuck_extraction(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Extraction blocks until the event is set (set at the end, so the service closes);
    the memory waits are cut to half a second."""
    release = threading.Event()
    real = writer_module.remember

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "remember", held)
    monkeypatch.setattr(memory_routes, "WAIT_S", 0.5)
    monkeypatch.setattr(run_routes, "MEMORY_WAIT_S", 0.5)
    try:
        yield release
    finally:
        release.set()


def test_a_memory_wait_that_runs_out_is_said_in_the_answer(
    sqlite_service: Service, stuck_extraction: threading.Event
) -> None:
    client = sqlite_service.client("alice")
    said = client.post("/threads/t1/runs/wait?wait_for_memory=true", json=_turn("I live in Oslo."))
    assert said.status_code == 200 and said.headers.get(PENDING) == "true"
    listed = client.get("/v1/memories", params={"wait_for_memory": "true"})
    assert listed.status_code == 200 and listed.headers.get(PENDING) == "true"
    found = client.post("/v1/memories/search?wait_for_memory=true", json={"query": "Oslo"})
    assert found.headers.get(PENDING) == "true"
    with client.stream(
        "POST", "/threads/t1/runs/stream?wait_for_memory=true", json=_turn("I ski.")
    ) as streamed:
        assert _events(streamed)[-2:] == ["memory_pending", "end"]

    stuck_extraction.set()
    listed = client.get("/v1/memories", params={"wait_for_memory": "true"})
    assert PENDING not in listed.headers
    assert any("Oslo" in str(m["text"]) for m in listed.json()["items"])
    schema = client.get("/openapi.json").json()
    answer = schema["paths"]["/v1/memories"]["get"]["responses"]["200"]
    assert PENDING in answer["headers"]


def test_finished_runs_events_are_bounded_and_answered_from_their_record(
    sqlite_service: Service,
) -> None:
    client = sqlite_service.client("alice")
    runs = run_manager(sqlite_service.state)
    ids = []
    for i in range(3):
        run = client.post(f"/threads/b{i}/runs", json=_turn(f"hello {i}")).json()
        assert client.get(f"/threads/b{i}/runs/{run['run_id']}/join").status_code == 200
        ids.append(run["run_id"])
    for i, run_id in enumerate(ids):  # join answers at `end`; its record lands just after
        assert runs.find("alice", f"b{i}", run_id).settled.wait(30)
    kept = runs.trim()
    assert kept > 0  # under the default bounds they all stay
    one = runs.find("alice", "b2", ids[2]).size

    runs.keep_finished_bytes = one  # room for about one run's events
    assert 0 < runs.trim() <= one
    with pytest.raises(NotFoundError):
        runs.find("alice", "b0", ids[0])  # the oldest went first
    runs.keep_finished_s = 0.0  # and none is kept past its time
    assert runs.trim() == 0

    for i, run_id in enumerate(ids):  # every one is still answered, from its record
        path = f"/threads/b{i}/runs/{run_id}"
        assert client.get(path).json()["status"] == "success"
        joined = client.get(f"{path}/join").json()
        assert joined["messages"][-1]["type"] == "ai"
        with client.stream("GET", f"{path}/stream") as streamed:
            assert _events(streamed) == ["metadata", "values", "end"]


def test_the_extraction_worker_concurrency_is_a_setting_and_a_cli_option(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"cc{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=redis_url,
        redis_prefix=prefix,
        extraction_concurrency=5,
        embeddings="fake",
    )
    made = ExtractionWorker.from_settings(settings, store=None, model=rule_based_chat_model())  # type: ignore[arg-type]
    assert made.concurrency == 5
    with pytest.raises(ValueError, match="extraction_concurrency"):
        Settings(extraction_concurrency=0)

    seen: list[int] = []

    def run(self: ExtractionWorker, on_ready: Any = None) -> None:
        seen.append(self.concurrency)
        if on_ready is not None:
            on_ready()

    monkeypatch.setattr(ExtractionWorker, "run", run)
    for name, value in {
        "MEMSHELF_DATA_DIR": str(tmp_path / "data"),
        "MEMSHELF_STORE_URL": redis_url,
        "MEMSHELF_REDIS_PREFIX": prefix,
        "MEMSHELF_CHAT_MODEL": "fake",
        "MEMSHELF_EMBEDDINGS": "fake",
        "MEMSHELF_EXTRACTION_CONCURRENCY": "4",
    }.items():
        monkeypatch.setenv(name, value)
    from memshelf.cli import app

    by_env = CliRunner().invoke(app, ["worker"])
    by_option = CliRunner().invoke(app, ["worker", "--concurrency", "3"])
    assert by_env.exit_code == by_option.exit_code == 0, (by_env.output, by_option.output)
    assert seen == [4, 3]
    assert "concurrency 3" in by_option.output


def test_a_writer_sees_other_processes_statuses_and_outlives_a_dead_one(
    tmp_path: Path,
) -> None:
    """The SQLite service's writers share statuses through the store: another writer's
    busy thread is waited for; once its lease ran out (its process died) it reads failed
    and no longer holds a wait."""
    from memshelf.memory import BackgroundWriter
    from memshelf.memory.writer import status_namespace
    from memshelf.stores import open_store

    settings = Settings(data_dir=tmp_path / "data", embeddings="fake")
    with open_store(settings=settings) as store:
        writer = BackgroundWriter(store, rule_based_chat_model(), share_status=True)
        other = {"thread_id": "t1", "writer": "elsewhere", "state": "running", "attempts": 0}
        namespace = status_namespace("alice")
        store.put(namespace, "elsewhere.t1", {**other, "alive_until": 4e9}, index=False)
        assert writer.status("alice", "t1").state == "running"
        assert writer.status("bob", "t1").state == "idle"
        assert not writer.wait("alice", "t1", timeout=0.3)
        assert writer.wait("bob", timeout=0.3)

        store.put(namespace, "elsewhere.t1", {**other, "alive_until": 1.0}, index=False)
        status = writer.status("alice", "t1")
        assert status.state == "failed" and (status.error or "").startswith("WriterStopped")
        assert writer.wait("alice", "t1", timeout=5)
        writer.discard_user("alice")
        assert store.search(namespace) == []
        writer.close()
