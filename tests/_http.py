"""Tiny real HTTP servers on 127.0.0.1 for tests: a handler served on a free port, and a
page whose answer a test changes while it is served."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from memshelf.team.corpus_server import running


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing, with one way to answer."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def answer(self, status: int, body: bytes = b"", kind: str | None = None) -> None:
        self.send_response(status)
        if kind is not None:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread; yields its origin."""
    with running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as origin:
        yield origin


@dataclass
class Page:
    """What :func:`serving_page` answers to every GET; change it while served. An answer
    other than 200 has no body."""

    body: bytes = b""
    kind: str | None = "text/html"  # None: no Content-Type header
    status: int = 200


@contextmanager
def serving_page(page: Page) -> Iterator[str]:
    """Serve ``page`` at every path of a free port of 127.0.0.1; yields its origin."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.answer(page.status, page.body if page.status == 200 else b"", page.kind)

    with serving(Handler) as origin:
        yield origin


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
