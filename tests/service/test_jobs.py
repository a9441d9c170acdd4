"""Background extraction through the Redis job queue, as deployed: `memshelf serve`
processes that queue the jobs and `memshelf worker` processes that run them, all real
subprocesses on a real Redis, driven by the official langgraph-sdk client."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client

from memshelf.config import Settings
from memshelf.memory import ExtractionJob
from memshelf.memory.queue import RedisJobWriter
from tests.cli.helpers import run_cli
from tests.service.conftest import (
    START_S,
    Service,
    make_keys,
    serve_env,
    serve_process,
    stop_process,
)


@contextmanager
def serve(settings: Settings, log: Path) -> Iterator[str]:
    """One `memshelf serve` process (extraction left to worker processes); its URL."""
    with serve_process(settings, log) as served:
        yield served.url


@contextmanager
def worker(settings: Settings, log: Path) -> Iterator[subprocess.Popen[str]]:
    """One `memshelf worker` process; yields it once it says it is ready."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memshelf.cli", "worker"],
            env=serve_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + START_S
        while "memshelf worker ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield proc
    finally:
        stop_process(proc)


def _reply(values: Any) -> str:
    assert isinstance(values, dict), values
    return str(values["messages"][-1]["content"])


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_url=redis_url,
        redis_prefix=f"jobs{uuid.uuid4().hex[:8]}",
        chat_model="fake",
        embeddings="fake",
    )


def test_a_fact_told_through_one_service_is_recalled_through_another(
    settings: Settings, tmp_path: Path
) -> None:
    """Two service processes and one worker: process 1 queues the extraction, it waits
    in Redis until the worker starts, and process 2 recalls the fact in a new thread."""
    key = make_keys(settings)["alice"]
    queue = RedisJobWriter.from_settings(settings)
    with ExitStack() as stack:
        stack.callback(queue.close)
        one = stack.enter_context(serve(settings, tmp_path / "serve1.log"))
        two = stack.enter_context(serve(settings, tmp_path / "serve2.log"))
        first = get_sync_client(url=one, api_key=key, timeout=60)
        second = get_sync_client(url=two, api_key=key, timeout=60)

        thread_a = first.threads.create()["thread_id"]
        said = {"messages": [{"role": "user", "content": "I live in Lisbon."}]}
        first.runs.wait(thread_a, "agent", input=said)
        assert queue.status("alice", thread_a).state == "pending"  # no worker yet
        assert queue.backlog().queued == 1

        proc = stack.enter_context(worker(settings, tmp_path / "worker.log"))
        thread_b = second.threads.create()["thread_id"]
        asked = {"messages": [{"role": "user", "content": "Where do I live?"}]}
        reply = _reply(second.runs.wait(thread_b, "agent", input=asked))
        assert "Lisbon" in reply  # recall waited for the worker, across processes
        status = queue.status("alice", thread_a)
        assert (status.state, status.done_messages) == ("done", 1)
        assert [o.text for o in status.outcomes] == ["I live in Lisbon"]

        assert stop_process(proc) == 0  # SIGTERM: a graceful stop
        assert "memshelf worker stopped" in (tmp_path / "worker.log").read_text()
        assert queue.workers() == 0


def test_the_service_runs_a_worker_inside_by_default_on_redis(
    tmp_path: Path, redis_url: str
) -> None:
    """`memshelf serve` on Redis with no worker process: its own worker runs the jobs."""
    from tests.service.conftest import running, service_settings

    settings = service_settings(tmp_path, "redis", redis_url)
    assert settings.extraction_worker
    svc = Service(url="", settings=settings, keys=make_keys(settings))
    queue = RedisJobWriter.from_settings(settings)
    try:
        with running(settings) as url:
            svc.url = url
            client = get_sync_client(url=url, api_key=svc.keys["alice"], timeout=60)
            thread = client.threads.create()["thread_id"]
            said = {"messages": [{"role": "user", "content": "I keep three hives."}]}
            client.runs.wait(thread, "agent", input=said)
            assert queue.wait("alice", thread, timeout=60)
            assert queue.workers() == 1
        assert queue.status("alice", thread).done_messages == 1
        assert queue.workers() == 0  # the service's shutdown stopped its worker
    finally:
        queue.close()


@pytest.mark.real_llm
@pytest.mark.real_model
def test_the_worker_command_extracts_with_the_real_local_model(
    tmp_path: Path, redis_url: str
) -> None:
    """The production path for real: `memshelf worker` with the local chat model and
    embedder runs a job another process queued."""
    settings = Settings(
        data_dir=tmp_path / "data", store_url=redis_url, redis_prefix=f"real{uuid.uuid4().hex[:8]}"
    )
    queue = RedisJobWriter.from_settings(settings)
    try:
        queue.submit(
            ExtractionJob("alice", "t1", "m1", "I play the cello in a community orchestra.")
        )
        with worker(settings, tmp_path / "worker.log"):
            assert queue.wait("alice", "t1", timeout=600), (tmp_path / "worker.log").read_text()
        status = queue.status("alice", "t1")
        assert status.state == "done", status
        assert any("cello" in o.text.lower() for o in status.outcomes), status
    finally:
        queue.close()


def test_the_worker_command_needs_a_redis_store(tmp_path: Path) -> None:
    done = run_cli("worker", data=tmp_path / "data", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "redis://" in done.stderr and "MEMSHELF_STORE_URL" in done.stderr
