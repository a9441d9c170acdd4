"""The demo's own web: the shipped honeybee corpus served on 127.0.0.1, with a small
Tavily-compatible ``POST /search`` so the researcher's web search works offline.

The demo, ``memshelf team serve-corpus``, the tests and the benchmark start it; the
team's fetches reach it through an explicit one-origin allow-list (see
:mod:`memshelf.team.sources`). The CLI serves it on a fixed port (8765 unless
``--port``), so a demo finding can be verified again later while it is served.
"""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

from memshelf.agent.research import html_to_text
from memshelf.errors import ConfigurationError
from memshelf.team.text import rank

CORPUS = Path(__file__).parent / "corpus"
PAGES = CORPUS / "pages"
NOTES = CORPUS / "notes"
DEFAULT_PORT = 8765  # `memshelf team demo` and `team serve-corpus`; findings' URLs name it


def _pages() -> dict[str, tuple[str, str]]:
    """page name → (title, text), every page but the index."""
    out = {}
    for path in sorted(PAGES.glob("*.html")):
        if path.stem != "index":
            out[path.name] = html_to_text(path.read_text(encoding="utf-8"))
    return out


def search(query: str, limit: int = 3) -> list[tuple[str, str, str]]:
    """(page name, title, snippet) of the pages that best match ``query``, ranked the way
    the team ranks its notes (:func:`memshelf.team.text.rank`: stems, idf, title weight)."""
    pages = _pages()
    return [(name, pages[name][0], pages[name][1][:200]) for name in rank(query, pages, limit)]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        name = self.path.split("?", 1)[0].lstrip("/") or "index.html"
        path = PAGES / name
        if "/" in name or not path.is_file():
            self._send(404, b"not found", "text/plain")
            return
        self._send(200, path.read_bytes(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if self.path != "/search":
            self._send(404, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send(400, b"bad json", "text/plain")
            return
        port = cast(ThreadingHTTPServer, self.server).server_port
        results = [
            {"title": title, "url": f"http://127.0.0.1:{port}/{name}", "content": snippet}
            for name, title, snippet in search(
                str(payload.get("query", "")), int(payload.get("max_results", 3))
            )
        ]
        self._send(200, json.dumps({"results": results}).encode(), "application/json")


def _bind(port: int, or_any_free: bool) -> ThreadingHTTPServer:
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        if or_any_free:
            return ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        raise ConfigurationError(
            f"Port {port} on 127.0.0.1 is in use (a corpus server may already run there: "
            "then use it). Choose another with --port."
        ) from exc


@contextmanager
def serve_corpus(port: int = 0, *, or_any_free: bool = False) -> Iterator[str]:
    """Serve the corpus on 127.0.0.1 (a free port by default); yields its origin.

    A fixed ``port`` (the CLI's :data:`DEFAULT_PORT`) keeps the demo's findings
    re-verifiable later: their URLs name it. When it is taken, ``or_any_free`` falls back
    to a free port instead of failing."""
    with running(_bind(port, or_any_free and port != 0)) as origin:
        yield origin


@contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve a bound loopback ``server`` on a daemon thread until the block ends; yields
    its origin (the tests' fake pages use it too)."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
