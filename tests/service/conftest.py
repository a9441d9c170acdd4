"""A real memshelf service on 127.0.0.1 (uvicorn in a thread), on SQLite or Redis.

The chat model and embedder are the deterministic fakes, so these tests are about HTTP,
auth and ownership; the real models run through the same app in test_real_model.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from memshelf.config import Settings
from memshelf.ops.keys import SCOPES, KeyRing
from memshelf.service import create_app
from memshelf.service.state import ServiceState


@dataclass
class Service:
    """A running service: its URL, settings and one key per role."""

    url: str
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)
    app: FastAPI | None = None

    @property
    def state(self) -> ServiceState:
        """What the running process holds open (the server runs in this process)."""
        assert self.app is not None
        state: ServiceState = self.app.state.memshelf
        return state

    def client(self, who: str | None = "alice", **kwargs: object) -> httpx.Client:
        headers = {"x-api-key": self.keys[who]} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TEAMS = {"alice": "alpha:team", "bob": "beta:team"}  # a ':' in each, as users may write


def make_keys(settings: Settings) -> dict[str, str]:
    """alice (of team TEAMS["alice"]) and bob (of TEAMS["bob"]) with chat, memories and
    findings, admin, and one key per missing scope."""
    from memshelf.stores import open_store

    with open_store(settings=settings) as store:
        ring = KeyRing(store)
        keys = {
            "alice": ring.create("alice", teams=[TEAMS["alice"]])[1],
            "bob": ring.create("bob", teams=[TEAMS["bob"]])[1],
            "admin": ring.create("root", ["admin"])[1],
        }
        for scope in SCOPES:
            if scope != "admin":
                rest = [s for s in SCOPES if s not in (scope, "admin")]
                keys[f"no:{scope}"] = ring.create("alice", rest, teams=[TEAMS["alice"]])[1]
        revoked, token = ring.create("alice")
        ring.revoke(revoked.key_id)
        keys["revoked"] = token
    return keys


@contextmanager
def running(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """``app`` (default ``create_app(settings)``) served by a real uvicorn on a free
    loopback port."""
    port = free_port()
    config = uvicorn.Config(
        app or create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def service_settings(tmp_path: Path, backend: str, redis_url: str | None) -> Settings:
    extra: dict[str, object] = {}
    if backend == "redis":
        extra = {"store_url": redis_url, "redis_prefix": f"svc{uuid.uuid4().hex[:10]}"}
    return Settings(
        data_dir=tmp_path / "data",
        chat_model="fake",
        embeddings="fake",
        extraction_debounce_s=0,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["sqlite", "redis"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The service on each backend, with keys for alice, bob, an admin and partial scopes."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = service_settings(tmp_path, request.param, redis_url)
    keys = make_keys(settings)
    app = create_app(settings)
    with running(settings, app) as url:
        yield Service(url=url, settings=settings, keys=keys, app=app)


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[Service]:
    """The service on the embedded default only (for tests that need no second backend)."""
    settings = service_settings(tmp_path, "sqlite", None)
    keys = make_keys(settings)
    app = create_app(settings)
    with running(settings, app) as url:
        yield Service(url=url, settings=settings, keys=keys, app=app)


# --- real `memshelf serve` processes (for --workers N and the Redis queue) --------------

START_S = 120.0  # a cold interpreter imports langgraph, FastAPI and the store on shared cores


def serve_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `memshelf serve`/`worker` subprocess reads ``settings`` from
    (extraction only in worker processes, unless ``extra`` says otherwise)."""
    return {
        **os.environ,
        "MEMSHELF_DATA_DIR": str(settings.data_dir),
        "MEMSHELF_STORE_URL": str(settings.store_url),
        "MEMSHELF_REDIS_PREFIX": settings.redis_prefix,
        "MEMSHELF_CHAT_MODEL": settings.chat_model,
        "MEMSHELF_EMBEDDINGS": settings.embeddings,
        "MEMSHELF_EXTRACTION_WORKER": "false",
        "MEMSHELF_EXTRACTION_DEBOUNCE_S": str(settings.extraction_debounce_s),
        **extra,
    }


def stop_process(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, as an orchestrator stops a container; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[str]
    log: Path


@contextmanager
def serve_process(
    settings: Settings,
    log: Path,
    *,
    code: str | None = None,
    env: dict[str, str] | None = None,
    graceful: bool = True,
) -> Iterator[ServeProcess]:
    """One real `memshelf serve` process, yielded once /healthz answers; stopped with
    SIGTERM after (``graceful``: and it must exit cleanly). ``code`` is a ``python -c``
    script that patches something, then calls ``memshelf.cli.main(sys.argv[1:])``."""
    port = free_port()
    program = ["-c", code] if code is not None else ["-m", "memshelf.cli"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, *program, "serve", "--port", str(port)],
            env=env or serve_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield ServeProcess(url=url, proc=proc, log=log)
    finally:
        code_ = stop_process(proc)
        if graceful:
            assert code_ in (0, -signal.SIGTERM), log.read_text()  # uvicorn re-raises it
