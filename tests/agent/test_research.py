"""Research tools against real HTTP servers on 127.0.0.1 and real files."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memshelf.agent.research import (
    FetchError,
    NotesIndex,
    WebSearchDisabled,
    fetch_text,
    html_to_text,
    web_search,
)
from memshelf.stores.sqlite import SqliteStore

PAGE = """<html><head><title>Fly.io docs</title><style>p{color:red}</style></head>
<body><script>alert('x')</script><h1>Deploying</h1><p>Run <b>fly deploy</b> to ship.</p>
<p>Second paragraph.</p></body></html>"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif self.path == "/big":
            self._send(200, b"x" * 50_000, "text/plain")
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"late", "text/plain")
        elif self.path == "/image":
            self._send(200, b"\x89PNG", "image/png")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/page")
            self.end_headers()
        else:
            self._send(404, b"nope", "text/plain")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["api_key"] == "k-123"
        results = [{"title": "Fly.io", "url": "https://fly.io", "content": body["query"]}]
        self._send(200, json.dumps({"results": results}).encode(), "application/json")

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up (the timeout test)
            self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_extracts_readable_text(server: str) -> None:
    text = fetch_text(server + "/page", allow_private=True)
    assert text.startswith("# Fly.io docs")
    assert "Run fly deploy to ship." in text and "Second paragraph." in text
    assert "alert" not in text and "color" not in text


def test_fetch_limits(server: str) -> None:
    assert fetch_text(server + "/big", max_bytes=1000, allow_private=True).endswith("[truncated]")
    with pytest.raises(FetchError, match=r"within 0\.5 s"):
        fetch_text(server + "/slow", timeout=0.5, allow_private=True)
    with pytest.raises(FetchError, match="image/png"):
        fetch_text(server + "/image", allow_private=True)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_text(server + "/missing", allow_private=True)
    with pytest.raises(FetchError, match="redirects to /page"):
        fetch_text(server + "/moved", allow_private=True)


def test_fetch_refuses_private_addresses_and_other_schemes(server: str) -> None:
    with pytest.raises(FetchError, match="private address"):
        fetch_text(server + "/page")
    with pytest.raises(FetchError, match="only http"):
        fetch_text("file:///etc/passwd")


def test_html_to_text_handles_entities() -> None:
    assert html_to_text("<p>a &amp; b</p>")[1] == "a & b"


def test_web_search_disabled_and_tavily(server: str) -> None:
    with pytest.raises(WebSearchDisabled, match="MEMSHELF_WEB_SEARCH=tavily"):
        web_search("x", provider="none", api_key=None)
    with pytest.raises(WebSearchDisabled, match="TAVILY_API_KEY"):
        web_search("x", provider="tavily", api_key=None)
    hits = web_search("fly deploy", provider="tavily", api_key="k-123", base_url=server)
    assert hits[0].url == "https://fly.io" and hits[0].snippet == "fly deploy"


def test_notes_index_follows_the_folder(store: SqliteStore, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "deploy.md").write_text("# Deploy\n\nWe deploy with fly deploy on Fly.io.")
    (notes / "food.txt").write_text("Ramen recipes and noodle shops.")
    (notes / "skip.png").write_bytes(b"\x89PNG")
    index = NotesIndex(store, "u", notes)
    assert index.sync() == 2
    assert index.sync() == 0  # unchanged files are not re-indexed
    assert index.search("how do we deploy fly")[0][0] == "deploy.md"
    (notes / "food.txt").write_text("Deploy notes moved here: fly deploy again.")
    (notes / "deploy.md").unlink()
    assert index.sync() == 2
    paths = {p for p, _, _ in index.search("deploy fly", limit=10)}
    assert paths == {"food.txt"}
    assert NotesIndex(store, "other", notes).search("deploy")[0][0] == "food.txt"
