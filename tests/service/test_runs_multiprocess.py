"""Runs and extraction across service processes (``--workers N``): real `memshelf serve`
processes on one SQLite file. A run started on one is found, joined, streamed, listed
and cancelled through another; ``multitask_strategy="reject"`` holds across them (a
lease per thread in the store), so no answered turn is lost; one process's pending
extraction is seen and waited for by the other; a run whose process is killed ends in
error once its lease runs out, and its thread is free again."""

from __future__ import annotations

import concurrent.futures
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from memshelf.config import Settings
from tests.service.conftest import (
    ServeProcess,
    make_keys,
    serve_env,
    serve_process,
    service_settings,
)

# `memshelf serve` whose fake chat model takes a while to answer (TEST_REPLY_S) and to
# extract (TEST_EXTRACT_S), so runs and extractions overlap, with short leases
# (TEST_LEASE_S) so a dead process is noticed within the test.
SLOW_SERVE = (
    "import os, sys, time\n"
    "import memshelf.llm.fake as fake\n"
    "import memshelf.memory.writer as writer\n"
    "import memshelf.service._runs as runs\n"
    "reply_s = float(os.environ.get('TEST_REPLY_S', '0.5'))\n"
    "extract_s = float(os.environ.get('TEST_EXTRACT_S', '0'))\n"
    "runs.LEASE_S = writer.STATUS_LEASE_S = float(os.environ.get('TEST_LEASE_S', '30'))\n"
    "def slow(messages, kwargs):\n"
    "    time.sleep(reply_s)\n"
    "    return fake._answer_from_facts(messages, kwargs)\n"
    "def slow_structured(messages, schema):\n"
    "    time.sleep(extract_s)\n"
    "    return fake._structured(messages, schema)\n"
    "fake.rule_based_chat_model = lambda: fake.ScriptedChatModel(\n"
    "    respond=slow, structured=slow_structured)\n"
    "from memshelf.cli import main\n"
    "main(sys.argv[1:])\n"
)
WAIT_S = 60.0  # the longest a test waits for another process to notice something


@dataclass
class Pair:
    """alice's clients of two serve processes on one SQLite file, and the processes."""

    first: httpx.Client
    second: httpx.Client
    one: ServeProcess
    two: ServeProcess


def _turn(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": text}]},
        "if_not_exists": "create",
        **extra,
    }


def _sqlite(tmp_path: Path) -> Settings:
    """The embedded store, named by URL (the subprocesses get their settings from env)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return service_settings(tmp_path, "sqlite", None).model_copy(update={"store_url": url})


def _pair(stack: ExitStack, tmp_path: Path, *, graceful: bool = True, **env: str) -> Pair:
    settings = _sqlite(tmp_path)
    headers = {"x-api-key": make_keys(settings)["alice"]}
    environ = serve_env(settings, **env)

    def start(name: str, clean: bool) -> ServeProcess:
        log = tmp_path / f"{name}.log"
        return stack.enter_context(
            serve_process(settings, log, code=SLOW_SERVE, env=environ, graceful=clean)
        )

    one, two = start("one", graceful), start("two", graceful)
    first = stack.enter_context(httpx.Client(base_url=one.url, headers=headers, timeout=120))
    second = stack.enter_context(httpx.Client(base_url=two.url, headers=headers, timeout=120))
    return Pair(first, second, one, two)


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[Pair]:
    with ExitStack() as stack:
        yield _pair(stack, tmp_path)


def _until(check: Any, what: str) -> Any:
    """Poll ``check`` until it returns something truthy (another process's doing)."""
    deadline = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return found


def _events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) of each SSE frame."""
    found, name = [], ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            found.append((name, line[6:]))
    return found


def test_a_run_started_on_one_process_is_found_and_joined_on_another(
    two_processes: Pair,
) -> None:
    first, second = two_processes.first, two_processes.second
    for i in range(5):
        run = first.post(f"/threads/w{i}/runs", json=_turn(f"hello {i}")).json()
        joined = second.get(f"/threads/w{i}/runs/{run['run_id']}/join")
        assert joined.status_code == 200, joined.text
        assert joined.json()["messages"][-1]["type"] == "ai"
        got = second.get(f"/threads/w{i}/runs/{run['run_id']}").json()
        assert got["status"] == "success" and got["run_id"] == run["run_id"]
        listed = second.get(f"/threads/w{i}/runs").json()
        assert [r["run_id"] for r in listed] == [run["run_id"]]
    missing = second.get(f"/threads/w0/runs/{uuid.uuid4()}")
    other_thread = second.get(f"/threads/w1/runs/{run['run_id']}")  # w4's run
    assert missing.status_code == other_thread.status_code == 404


def test_reject_holds_across_processes_and_no_answered_turn_is_lost(
    two_processes: Pair,
) -> None:
    first, second = two_processes.first, two_processes.second
    jobs = [(first if i % 2 else second, f"turn {i}") for i in range(8)]

    def go(job: tuple[httpx.Client, str]) -> tuple[int, str]:
        client, text = job
        body = _turn(text, multitask_strategy="reject")
        return client.post("/threads/rj/runs/wait", json=body).status_code, text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(go, jobs))
    state = first.get("/threads/rj/state").json()
    said = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    answered = sorted(text for status, text in answers if status == 200)
    assert {status for status, _ in answers} <= {200, 409}, answers
    assert answered and sorted(said) == answered  # every 200 is a turn in the thread


def test_a_run_is_streamed_and_cancelled_from_another_process(tmp_path: Path) -> None:
    with ExitStack() as stack:
        pair = _pair(stack, tmp_path, TEST_REPLY_S="2")
        first, second = pair.first, pair.second
        run = first.post("/threads/s1/runs", json=_turn("hello")).json()
        with second.stream("GET", f"/threads/s1/runs/{run['run_id']}/stream") as streamed:
            assert streamed.status_code == 200
            events = _events(streamed)
        assert [name for name, _ in events] == ["metadata", "values", "end"], events
        assert run["run_id"] in events[0][1] and '"type":"ai"' in events[1][1]

        slow = first.post("/threads/s2/runs", json=_turn("hello again")).json()
        _until(
            lambda: second.get(f"/threads/s2/runs/{slow['run_id']}").json()["status"] == "running",
            "the run to start",
        )
        cancelled = second.post(f"/threads/s2/runs/{slow['run_id']}/cancel?wait=true")
        assert cancelled.status_code == 202, cancelled.text
        got = second.get(f"/threads/s2/runs/{slow['run_id']}").json()
        assert got["status"] == "interrupted", got
        assert first.get(f"/threads/s2/runs/{slow['run_id']}").json()["status"] == "interrupted"


def test_a_pending_extraction_is_seen_and_waited_for_by_another_process(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        pair = _pair(stack, tmp_path, TEST_EXTRACT_S="3", TEST_REPLY_S="0")
        first, second = pair.first, pair.second
        told = first.post("/threads/x1/runs/wait", json=_turn("I live in Lisbon."))
        assert told.status_code == 200, told.text
        status = second.get("/v1/threads/x1/extraction").json()
        assert status["state"] in ("pending", "running"), status  # process one's job

        listed = second.get("/v1/memories", params={"wait_for_memory": "true"})
        assert listed.status_code == 200
        assert "Memshelf-Memory-Pending" not in listed.headers
        assert any("Lisbon" in str(m["text"]) for m in listed.json()["items"]), listed.json()
        status = second.get("/v1/threads/x1/extraction").json()
        assert (status["state"], status["done_messages"]) == ("done", 1), status


def test_a_killed_process_s_run_ends_in_error_and_frees_its_thread(tmp_path: Path) -> None:
    with ExitStack() as stack:
        pair = _pair(stack, tmp_path, graceful=False, TEST_REPLY_S="600", TEST_LEASE_S="3")
        first, second = pair.first, pair.second
        run = first.post("/threads/k1/runs", json=_turn("hello")).json()
        path = f"/threads/k1/runs/{run['run_id']}"
        _until(lambda: second.get(path).json()["status"] == "running", "the run to start")

        pair.one.proc.send_signal(signal.SIGKILL)
        pair.one.proc.wait(30)
        ended = _until(
            lambda: (got := second.get(path).json())["status"] != "running" and got,
            "the dead process's run to end",
        )
        assert ended["status"] == "error", ended
        joined = second.get(f"{path}/join").json()
        assert joined["__error__"]["error"] == "Interrupted", joined
        listed = second.get("/threads/k1/runs").json()
        assert [r["status"] for r in listed] == ["error"]

        fresh = second.post(
            "/threads/k1/runs", json=_turn("hello again", multitask_strategy="reject")
        )
        assert fresh.status_code == 200, fresh.text  # the dead run's thread lease is gone
        pair.two.proc.kill()  # its run waits 600 s on the model: no graceful stop
