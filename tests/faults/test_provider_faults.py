"""A hosted provider that fails: ``openai:`` against a local server speaking the OpenAI
chat API, which answers HTTP 500, never answers in time, or works.

The real ``memshelf ask`` runs with MEMSHELF_LLM_TIMEOUT=1 and MEMSHELF_LLM_MAX_RETRIES=1:
the turn must fail within its bound with one ``error:`` line naming what happened and
the setting to change, after exactly 1 + retries requests; the thread must take the
next turn once the server works, and the failed turn's message must be remembered
(once) by that next turn.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from memshelf.config import Settings
from memshelf.errors import ConfigurationError
from memshelf.llm import chat_model
from memshelf.memory.journal import JOBS_ROOT
from memshelf.ops.threads import open_threads, thread_messages
from memshelf.stores import open_store
from tests.faults._cli import assert_clean_failure, lines, memshelf
from tests.faults.conftest import USER, cli_settings
from tests.faults.registry import Fault, fault

pytest.importorskip("langchain.chat_models", reason="hosted models need langchain")
pytest.importorskip("langchain_openai", reason="the openai: provider needs langchain-openai")

FACT = "My sister is called Ada"
MODEL = "openai:gpt-4o-mini"


class FakeOpenAI(ThreadingHTTPServer):
    """``POST /v1/chat/completions`` as OpenAI answers it, or failing as ``mode`` says."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"  # "ok", "500" or "slow"
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests += 1
        if self.server.mode == "500":
            self._send(500, {"error": {"message": "boom", "type": "server_error"}})
            return
        if self.server.mode == "slow":
            time.sleep(5)  # past the client's timeout
        self._send(200, _completion(body))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (timeout)
            self.wfile.write(data)


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completion: structured output by the schema asked for, else a plain answer."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    said = json.dumps(body.get("messages", []))
    if schema == "ExtractedFacts":
        facts = [{"text": FACT, "kind": "fact"}] if "Ada" in said else []
        content = json.dumps({"facts": facts})
    elif schema == "Decision":
        content = json.dumps({"op": "ADD", "target": None})
    else:
        content = "Hello from the fake provider."
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def provider() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _env(server: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test-not-a-key",
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_BASE": server.url,
        "MEMSHELF_LLM_TIMEOUT": "1",
        "MEMSHELF_LLM_MAX_RETRIES": "1",
    }


def _ask(data: Path, server: FakeOpenAI, message: str) -> tuple[Any, float]:
    args = ["ask", "--user", USER, "--thread", "t", "--model", MODEL, message]
    start = time.monotonic()
    result = memshelf(*args, data=data, env=_env(server), timeout=120)
    return result, time.monotonic() - start


def _journal(data: Path) -> int:
    with open_store(settings=cli_settings(data)) as store:
        return len(store.search((JOBS_ROOT,), filter={"kind": "job"}, limit=100))


def _shown(data: Path) -> list[str]:
    with open_threads(cli_settings(data)) as (_, saver):
        return [
            f"{m.type}> {m.text}"
            for m in thread_messages(saver, USER, "t")
            if m.type in ("human", "ai") and m.text
        ]


@pytest.mark.parametrize(
    ("mode", "row"), [("500", fault("provider-http-500")), ("slow", fault("provider-timeout"))]
)
def test_a_failing_provider_fails_the_turn_in_bounded_time_and_the_thread_goes_on(
    data: Path, provider: FakeOpenAI, mode: str, row: Fault
) -> None:
    provider.mode = mode
    failed, seconds = _ask(data, provider, FACT)
    assert_clean_failure(failed, row)
    assert "MEMSHELF_LLM" in failed.stderr
    assert provider.requests == 2  # the request and one retry, no more
    # (1 + retries) x 1 s timeout + the SDK's backoff, plus starting Python: well under 30 s
    assert seconds < 30, seconds
    assert _journal(data) == 1  # the message waits for a working model
    provider.mode, provider.requests = "ok", 0
    worked, _ = _ask(data, provider, "Hello?")
    assert lines(worked) == ["Hello from the fake provider."]
    assert _shown(data) == [f"human> {FACT}", "human> Hello?", "ai> Hello from the fake provider."]
    assert _journal(data) == 0
    listed = lines(memshelf("memories", "list", "--user", USER, data=data))
    assert sum(FACT in line for line in listed) == 1, listed


def test_the_bounds_reach_the_provider_and_bad_values_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"OPENAI_API_KEY": "sk-test-not-a-key"}
    monkeypatch.setenv("OPENAI_API_KEY", env["OPENAI_API_KEY"])
    settings = Settings(data_dir=tmp_path, llm_timeout=7.5, llm_max_retries=4)
    model = chat_model(MODEL, settings=settings)
    assert (model.request_timeout, model.max_retries) == (7.5, 4)  # type: ignore[attr-defined]
    bad = [("LLM_TIMEOUT", "-1"), ("LLM_TIMEOUT", "soon"), ("LLM_MAX_RETRIES", "-2")]
    for variable, value in bad:
        result = memshelf(
            "ask", "--user", USER, "--model", MODEL, "hi",
            data=tmp_path / "d", env={f"MEMSHELF_{variable}": value, **env},
        )  # fmt: skip
        assert result.returncode == 2 and f"MEMSHELF_{variable}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    with pytest.raises(ConfigurationError):
        from memshelf.config import load_settings

        load_settings(llm_timeout=0)
