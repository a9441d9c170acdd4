"""Probes, metrics and logs of a live service: /healthz, /readyz naming the part that
failed, /metrics in the app's own registry, one JSON log line per request with a request
id, and no secret or message text in any log."""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from memshelf.agent.graph import memory_writer
from memshelf.config import Settings, redact
from memshelf.service import create_app
from memshelf.service.logs import JsonFormatter, RequestLogMiddleware, scrub
from memshelf.testing import redis_process
from tests.conftest import REAL_MODEL_DIR
from tests.service.conftest import Service, make_keys, running, service_settings

MARKER = "zanzibar-octopus-7731"  # a word of the user's message that must never be logged


def run_body(text: str) -> dict[str, Any]:
    return {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}}


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines in captured output (other lines, e.g. uvicorn's, are skipped)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def chat(service: Service, who: str, text: str, timeout: float = 60) -> str:
    """One turn on a new thread, waiting for its memories; returns the thread id."""
    headers = {"x-api-key": service.keys[who]}
    with httpx.Client(base_url=service.url, headers=headers, timeout=timeout) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        answer = client.post(
            f"/threads/{thread}/runs/wait", params={"wait_for_memory": "true"}, json=run_body(text)
        )
        assert answer.status_code == 200, answer.text
    return str(thread)


# --- probes --------------------------------------------------------------------------------


def test_healthz_and_readyz_need_no_key(service: Service) -> None:
    with service.client(None) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        ready = anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "store": "ok",
        "checkpointer": "ok",
        "model": "ok",
        "writer": "ok",
    }


def test_readyz_names_a_stopped_writer(sqlite_service: Service) -> None:
    writer = memory_writer(sqlite_service.state.graph)
    assert writer is not None
    writer.close()
    with sqlite_service.client(None) as anon:
        ready = anon.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["writer"].startswith("failed")
    assert ready.json()["checks"]["store"] == "ok"
    assert "writer" in ready.json()["detail"]


def test_readyz_names_the_store_when_redis_goes_away(tmp_path: Path) -> None:
    with redis_process() as redis:
        settings = service_settings(tmp_path, "redis", redis.url)
        with running(settings) as url, Service(url=url, settings=settings).client(None) as anon:
            assert anon.get("/readyz").status_code == 200
            redis.stop()
            ready = anon.get("/readyz")
            assert anon.get("/healthz").status_code == 200  # alive, just not ready
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["store"] != "ok" and checks["checkpointer"] != "ok", checks
    assert checks["model"] == "ok"
    assert "store" in ready.json()["detail"]
    assert redis.url not in ready.text  # error types only, never a host or a message


# --- metrics -------------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0


def test_metrics_need_an_admin_key(sqlite_service: Service) -> None:
    with sqlite_service.client(None) as anon, sqlite_service.client("alice") as alice:
        assert anon.get("/metrics").status_code == 401
        assert alice.get("/metrics").status_code == 403


def test_metrics_count_requests_recall_model_and_extraction(service: Service) -> None:
    thread = chat(service, "alice", f"I live in Lisbon and my cat is called {MARKER}.")
    with service.client("alice") as alice:
        assert alice.get("/threads/no-such-thread").status_code == 404
    with service.client("admin") as admin:
        answer = admin.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    route = "/threads/{thread_id}/runs/wait"
    assert metric(text, "memshelf_http_requests_total", route=route, status="200") == 1
    assert metric(text, "memshelf_http_request_duration_seconds_count", route=route) == 1
    assert metric(text, "memshelf_http_requests_total", route="/threads/{thread_id}") == 1
    assert thread not in text and "no-such-thread" not in text  # templates, never ids
    assert metric(text, "memshelf_recall_duration_seconds_count") == 1
    assert metric(text, "memshelf_model_call_duration_seconds_count", phase="respond") >= 1
    assert "memshelf_extraction_queued" in text and "memshelf_extraction_lag_seconds" in text
    assert metric(text, "memshelf_extraction_queued") == 0  # waited for: nothing queued
    assert MARKER not in text


@pytest.mark.real_llm
def test_metrics_count_the_local_models_tokens_and_time(tmp_path: Path) -> None:
    """The same counters with the local chat model, which reports its token usage: the
    reply's tokens under ``respond``, the memory writer's under ``extraction``."""
    settings = service_settings(tmp_path, "sqlite", None).model_copy(
        update={"chat_model": Settings().chat_model, "models_dir": REAL_MODEL_DIR}
    )
    keys = make_keys(settings)
    with running(settings) as url:
        service = Service(url=url, settings=settings, keys=keys)
        chat(service, "alice", "I live in Lisbon and I keep bees.", timeout=600)
        with service.client("admin") as admin:
            text = admin.get("/metrics").text
    for phase in ("respond", "extraction"):
        assert metric(text, "memshelf_model_call_duration_seconds_count", phase=phase) >= 1
        assert metric(text, "memshelf_model_call_duration_seconds_sum", phase=phase) > 0
        for direction in ("input", "output"):
            tokens = metric(text, "memshelf_model_tokens_total", phase=phase, direction=direction)
            assert tokens > 0, (phase, direction)


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chat_model="fake", embeddings="fake")
    first, second = create_app(settings), create_app(settings)
    first.state.metrics.observe_request("GET", "/healthz", 200, 0.01)
    assert "memshelf_http_requests_total" in first.state.metrics.render()[0].decode()
    assert 'route="/healthz"' not in second.state.metrics.render()[0].decode()
    assert not [m.name for m in prometheus_client.REGISTRY.collect() if "memshelf" in m.name]


# --- logs ----------------------------------------------------------------------------------


def request_lines(capfd: pytest.CaptureFixture[str], count: int) -> list[dict[str, Any]]:
    """The request lines logged so far, once ``count`` are in: a line is written just after
    its response is sent, so the last one may trail the client by a moment."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(found) < count and time.monotonic() < deadline:
        found += [line for line in log_lines(capfd.readouterr().err) if line["msg"] == "request"]
        time.sleep(0.02)
    return found


def test_one_json_line_per_request_with_its_request_id(
    sqlite_service: Service, capfd: pytest.CaptureFixture[str]
) -> None:
    thread = chat(sqlite_service, "alice", f"My dog is called {MARKER}.")
    with sqlite_service.client("alice") as alice:
        given = alice.get("/v1/me", headers={"x-request-id": "trace-42.a_b"})
        made = alice.get("/v1/me", headers={"x-request-id": "not ok " + "x" * 200})
        missing = alice.get(f"/threads/{thread}x")
    assert given.headers["x-request-id"] == "trace-42.a_b"
    assert (
        made.headers["x-request-id"] != "trace-42.a_b" and len(made.headers["x-request-id"]) == 32
    )
    requests = request_lines(capfd, 5)  # POST /threads, runs/wait, 2 x /v1/me, GET
    by_id = {line["request_id"]: line for line in requests}
    assert len(by_id) == len(requests) == 5
    line = by_id["trace-42.a_b"]
    assert line["method"] == "GET" and line["route"] == "/v1/me" and line["status"] == 200
    assert line["user"] == redact("alice") and isinstance(line["duration_ms"], float)
    assert by_id[missing.headers["x-request-id"]]["route"] == "/threads/{thread_id}"
    assert by_id[missing.headers["x-request-id"]]["status"] == 404
    everything = json.dumps(requests)
    assert MARKER not in everything and thread not in everything
    assert '"alice"' not in everything
    assert logging.getLogger("uvicorn.access").disabled  # raw paths would say more


def test_an_unforeseen_error_is_logged_and_answered_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError(f"the user said {MARKER}")

    client = TestClient(RequestLogMiddleware(broken))
    answer = client.get("/anything", headers={"x-request-id": "r-1"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "r-1" and "r-1" in answer.json()["detail"]
    assert MARKER not in answer.text  # the caller never sees the error's text
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
    line = json.loads(JsonFormatter().format(failed))
    assert line["request_id"] == "r-1" and line["msg"] == "unhandled error: RuntimeError"
    assert "in broken" in line["trace"]  # where it happened: the frames, without the text
    assert MARKER not in JsonFormatter().format(failed) and MARKER not in caplog.text


def test_no_secret_or_message_text_reaches_the_logs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A run on a password-protected Redis, with a key and a web search key configured:
    every line anything wrote (ours, uvicorn's, stray prints) is free of all three."""
    caplog.set_level(logging.DEBUG, logger="memshelf")
    password = "pw-" + secrets.token_hex(12)
    with redis_process(extra_args=["--requirepass", password]) as redis:
        settings = service_settings(tmp_path, "redis", redis.url).model_copy(
            update={
                "redis_password": SecretStr(password),
                "tavily_api_key": SecretStr("tvly-" + secrets.token_hex(8)),
                "log_level": "DEBUG",
            }
        )
        keys = make_keys(settings)
        with running(settings) as url:
            service = Service(url=url, settings=settings, keys=keys)
            chat(service, "alice", f"I work at {MARKER} on Tuesdays.")
            with service.client("alice") as alice:
                alice.get("/v1/me", headers={"Authorization": f"Bearer {keys['alice']}"})
                alice.post("/v1/memories", content=b"{broken")
                alice.get(f"/v1/memories/{keys['bob']}")  # a key where an id goes
            with service.client(None) as anon:
                anon.get("/v1/me", headers={"x-api-key": keys["alice"] + "x"})
    captured = capfd.readouterr()
    written = captured.out + captured.err + caplog.text
    assert log_lines(captured.err), "the service logged nothing: the test would prove nothing"
    assert password not in written
    assert settings.tavily_api_key is not None
    assert settings.tavily_api_key.get_secret_value() not in written
    for token in (keys["alice"], keys["bob"]):
        assert token not in written and token.split("_", 2)[2] not in written
    assert MARKER not in written
    assert redis.url not in written
    start = next(line for line in log_lines(captured.err) if line["msg"] == "service starting")
    assert start["store_url_hash"] == redact(redis.url)


def test_the_formatter_blanks_what_slips_through() -> None:
    """The last guard: keys, URL credentials and configured secrets in any log text."""
    record = logging.makeLogRecord(
        {"msg": "got %s from redis://:hunter2@db:6379 and s3cret", "args": ("msk_ab12_cd34",)}
    )
    line = JsonFormatter(secrets=["s3cret"]).format(record)
    assert "hunter2" not in line and "cd34" not in line and "s3cret" not in line
    assert json.loads(line)["msg"] == (
        "got msk_[redacted] from redis://[redacted]@db:6379 and [redacted]"
    )
    assert scrub(str(uuid.UUID(int=7))) == str(uuid.UUID(int=7))
