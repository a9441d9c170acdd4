"""Review of issue 14's unreachable-vs-rejected split (adversarial), and the corpus
server's refusal of paths outside its pages. Real sockets on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.team.corpus_server import serve_corpus
from memshelf.team.findings import Evidence, get_finding, propose
from memshelf.team.sources import Sources
from memshelf.team.verify import verify_finding

TEAM = "bees"
QUOTE = "In summer a worker honeybee lives about five to six weeks."
PAGE = f"<html><body><p>{QUOTE}</p></body></html>".encode()


@contextmanager
def _page_then(kind: str) -> Iterator[tuple[str, list[str]]]:
    """A loopback page holding QUOTE as HTML; once ``mode[0]`` is "binary", the same URL
    answers 200 with ``kind`` instead (the page replaced by a file that is not text)."""
    mode = ["html"]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            body, ctype = (PAGE, "text/html") if mode[0] == "html" else (b"\x00\x01", kind)
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", mode
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_page_that_answers_200_without_text_rejects_the_claim(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with _page_then("application/octet-stream") as (origin, mode):
        sources = Sources.create(Settings(data_dir=tmp_path / "d"), allow_origins=[origin])
        doc = sources.read(f"{origin}/page")
        key = propose(
            store, TEAM, QUOTE, Evidence(doc.source, QUOTE, doc.sha256, doc.fetched_at),
            author="researcher",
        )  # fmt: skip
        assert verify_finding(store, TEAM, key, sources, model).ok
        mode[0] = "binary"  # the server answers, and what it answers holds no quote
        verdict = verify_finding(store, TEAM, key, sources, model)
    assert verdict.unreachable is None
    assert get_finding(store, TEAM, key).value["status"] == "rejected"


@pytest.mark.parametrize(
    "path",
    ["/../../config.py", "/..%2f..%2fconfig.py", "/%2e%2e/%2e%2e/corpus_server.py",
     "//etc/passwd", "/../notes/apiary-log.md", "/pages", "/%2e%2e"],
)  # fmt: skip
def test_the_corpus_server_serves_only_its_pages(path: str) -> None:
    with serve_corpus() as origin:
        with httpx.Client() as client:
            request = client.build_request("GET", origin)
            request.url = request.url.copy_with(raw_path=path.encode())
            answer = client.send(request)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert httpx.get(f"{origin}/queen.html").status_code == 200
