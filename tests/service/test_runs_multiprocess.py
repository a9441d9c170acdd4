"""Runs across service processes (``--workers N``): two real `memshelf serve` processes
on one SQLite data directory. A run started on one is found, joined and listed on the
other, and ``multitask_strategy="reject"`` holds across them (a lease per thread in the
store), so no answered turn is lost."""

from __future__ import annotations

import concurrent.futures
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from memshelf.config import Settings
from tests.service.conftest import free_port, make_keys, service_settings
from tests.service.test_jobs import START_S, _env, _stop

# `memshelf serve` whose fake chat model takes a while to answer, so runs overlap
SLOW_SERVE = (
    "import sys, time\n"
    "import memshelf.llm.fake as fake\n"
    "def slow(messages, kwargs):\n"
    "    time.sleep(0.5)\n"
    "    return fake._answer_from_facts(messages, kwargs)\n"
    "fake.rule_based_chat_model = lambda: fake.ScriptedChatModel(\n"
    "    respond=slow, structured=fake._structured)\n"
    "from memshelf.cli import main\n"
    "main(sys.argv[1:])\n"
)


@contextmanager
def serve(settings: Settings, log: Path) -> Iterator[str]:
    """One real `memshelf serve` process (a slow fake model); its URL once it answers."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_SERVE, "serve", "--port", str(port)],
            env=_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


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


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """alice's clients of two `memshelf serve` processes on one SQLite data directory."""
    settings = _sqlite(tmp_path)
    headers = {"x-api-key": make_keys(settings)["alice"]}
    with ExitStack() as stack:
        one = stack.enter_context(serve(settings, tmp_path / "one.log"))
        two = stack.enter_context(serve(settings, tmp_path / "two.log"))
        first = stack.enter_context(httpx.Client(base_url=one, headers=headers, timeout=120))
        second = stack.enter_context(httpx.Client(base_url=two, headers=headers, timeout=120))
        yield first, second


def test_a_run_started_on_one_process_is_found_and_joined_on_another(
    two_processes: tuple[httpx.Client, httpx.Client],
) -> None:
    first, second = two_processes
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
    two_processes: tuple[httpx.Client, httpx.Client],
) -> None:
    first, second = two_processes
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
