"""Which fetch failures are temporary (a retry may succeed) and which are the source's
answer (issue 14's review): the verifier rejects a claim only on the latter. Also a web
search provider answering malformed JSON. Real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from memshelf.agent.research import FetchError, fetch_text, web_search
from memshelf.config import Settings
from memshelf.team.sources import Sources
from tests._http import QuietHandler, free_port, serving
from tests.agent.test_research import PUBLIC_IP, FakeNet, serve


class Answers(QuietHandler):
    """``GET /<code>`` answers that status; ``POST`` answers the JSON in ``reply``."""

    reply: Any = None

    def do_GET(self) -> None:
        self.answer(int(self.path.strip("/")), b"no", "text/plain")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(200, json.dumps(self.reply).encode(), "application/json")


def answering(reply: Any = None) -> AbstractContextManager[str]:
    return serving(type("A", (Answers,), {"reply": reply}))


def _error(url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as raised:
        fetch_text(url, allow_private=True, **kwargs)
    return raised.value


@pytest.mark.parametrize(
    ("code", "temporary"),
    [(500, True), (502, True), (503, True), (504, True), (408, True), (429, True),
     (404, False), (410, False), (403, False), (401, False), (400, False)],
)  # fmt: skip
def test_http_statuses_5xx_408_429_are_temporary(code: int, temporary: bool) -> None:
    with answering() as origin:
        error = _error(f"{origin}/{code}")
    assert f"HTTP {code}" in str(error) and error.temporary is temporary


def test_the_source_s_answers_are_permanent() -> None:
    with serve() as (port, _):
        origin = f"http://127.0.0.1:{port}"
        not_text = _error(f"{origin}/image")
        assert "not text" in str(not_text) and not not_text.temporary
        looping = _error(f"{origin}/loop")
        assert "redirected more than" in str(looping) and not looping.temporary
        local = _error(f"{origin}/moved", max_redirects=0)  # an allowed local origin
        assert not local.temporary
    assert not _error("ftp://example.org/x").temporary


def test_network_failures_are_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = free_port()  # connection refused
    refused = _error(f"http://127.0.0.1:{closed}/page")
    assert refused.temporary
    with serve() as (port, _):
        slow = _error(f"http://127.0.0.1:{port}/slow", timeout=0.3)
    assert "did not answer" in str(slow) and slow.temporary

    def no_dns(*args: object, **kwargs: object) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    dns = _error("http://bees.example.org/page")
    assert "cannot resolve" in str(dns) and dns.temporary


def test_a_redirect_to_a_private_address_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    net = FakeNet(monkeypatch)
    with serve() as (port, _):
        net.public_port = port
        net.names["site.test"] = [[PUBLIC_IP]]
        with pytest.raises(FetchError, match="private address") as raised:
            fetch_text(f"http://site.test:{port}/redirect?to=http://127.0.0.1:{port}/page")
    assert not raised.value.temporary


@pytest.mark.parametrize(
    "reply",
    [[{"title": "t", "url": "https://x.org"}], {"results": ["not an object"]},
     {"results": {"url": "https://x.org"}}, "just text"],
)  # fmt: skip
def test_web_search_malformed_json_is_a_fetch_error(reply: Any, tmp_path: Path) -> None:
    with answering(reply) as origin:
        with pytest.raises(FetchError, match="not Tavily-compatible"):
            web_search("bees", provider="tavily", api_key="k", base_url=origin)
        settings = Settings(
            data_dir=tmp_path, web_search="tavily", web_search_url=origin, tavily_api_key="k"
        )
        with pytest.raises(FetchError):  # what the researcher records as a failed step
            Sources.create(settings).search_web("bees")
