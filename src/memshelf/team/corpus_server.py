"""The demo's own web: the shipped honeybee corpus served on 127.0.0.1, with a small
Tavily-compatible ``POST /search`` so the researcher's web search works offline.

Only the demo, the tests and the benchmark start it; the team's fetches reach it through
an explicit one-origin allow-list (see :mod:`memshelf.team.sources`).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

from memshelf.agent.research import html_to_text

CORPUS = Path(__file__).parent / "corpus"
PAGES = CORPUS / "pages"
NOTES = CORPUS / "notes"
_STOP = frozenset(
    "a an the and or of to in on at for with is are was be by do does how what which who "
    "why when where it its this that from as their there they other each".split()
)


def _words(text: str) -> set[str]:
    return {w[:6] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def _pages() -> dict[str, tuple[str, str]]:
    """page name → (title, text), every page but the index."""
    out = {}
    for path in sorted(PAGES.glob("*.html")):
        if path.stem != "index":
            out[path.name] = html_to_text(path.read_text(encoding="utf-8"))
    return out


def search(query: str, limit: int = 3) -> list[tuple[str, str, str]]:
    """(page name, title, snippet) of the pages sharing the most words with ``query``."""
    pages = _pages()
    bags = {name: _words(title + " " + text) for name, (title, text) in pages.items()}
    words = _words(query)
    df = {w: sum(w in bag for bag in bags.values()) for w in words}
    scored = []
    for name, (title, text) in pages.items():
        # rarer shared words weigh more: "honeybee" is on every page, "waggle" on two
        score = sum(math.log((1 + len(bags)) / df[w]) for w in words & bags[name])
        if score > 0:
            scored.append((score, name, title, text[:200]))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(name, title, snippet) for _, name, title, snippet in scored[:limit]]


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


@contextmanager
def serve_corpus(port: int = 0) -> Iterator[str]:
    """Serve the corpus on 127.0.0.1 (a free port by default); yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
