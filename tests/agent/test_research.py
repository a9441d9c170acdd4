"""Research tools against real HTTP servers on 127.0.0.1 and real files."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

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
from memshelf.team.corpus_server import running

PAGE = """<html><head><title>Fly.io docs</title><style>p{color:red}</style></head>
<body><script>alert('x')</script><h1>Deploying</h1><p>Run <b>fly deploy</b> to ship.</p>
<p>Second paragraph.</p></body></html>"""


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]]  # (path, Host header) of every GET, per server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host", "")))
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
            self._redirect("/page")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path.startswith("/redirect?"):
            self._redirect(parse_qs(urlparse(self.path).query)["to"][0])
        else:
            self._send(404, b"nope", "text/plain")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["api_key"] == "k-123"
        results = [{"title": "Fly.io", "url": "https://fly.io", "content": body["query"]}]
        self._send(200, json.dumps({"results": results}).encode(), "application/json")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up (the timeout test)
            self.wfile.write(body)


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A real HTTP(S) server on 127.0.0.1: (port, the requests it saw)."""
    seen: list[tuple[str, str]] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"seen": seen}))
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    with running(httpd):
        yield httpd.server_address[1], seen


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as (port, _):
        yield f"http://127.0.0.1:{port}"


PUBLIC_IP = "93.184.215.14"  # any global address: FakeNet carries connections to it locally


class FakeNet:
    """DNS answers and routing chosen by the test, patched in ``socket`` for memshelf and httpx.

    A name in ``names`` answers its lists in turn (the last one repeats); a connection to
    PUBLIC_IP is carried to ``public_port`` on 127.0.0.1 (a real server standing in for an
    internet host), one to 127.0.0.1 goes through, one to a test name is looked up again
    first, and anything else is refused, so nothing leaves the machine.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self.public_port = 0
        real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.names:
                return real_getaddrinfo(host, port, *args, **kwargs)
            self.lookups.append(name)
            answers = self.names[name]
            ips = answers.pop(0) if len(answers) > 1 else answers[0]
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in ips
            ]

        def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
            host, port = address[0], address[1]
            self.connects.append((host, port))
            if host in self.names:  # connecting by name (as HEAD's code did): a second lookup
                host = getaddrinfo(host, port)[0][4][0]
            if host == PUBLIC_IP:
                return real_connect(("127.0.0.1", self.public_port), *args, **kwargs)
            if host == "127.0.0.1":
                return real_connect((host, port), *args, **kwargs)
            raise ConnectionRefusedError(f"FakeNet: no route to {host}")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> FakeNet:
    return FakeNet(monkeypatch)


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
    with pytest.raises(FetchError, match="redirected more than 5 times"):
        fetch_text(server + "/loop", allow_private=True)
    moved = fetch_text(server + "/moved", allow_private=True)
    assert moved.startswith(f"[redirected to {server}/page]\n# Fly.io docs\n")


def test_fetch_refuses_private_addresses_and_other_schemes(server: str) -> None:
    with pytest.raises(FetchError, match="private address"):
        fetch_text(server + "/page")
    with pytest.raises(FetchError, match="only http"):
        fetch_text("file:///etc/passwd")


@pytest.mark.parametrize(
    "host",
    [
        "100.64.0.1",  # shared address space (carrier-grade NAT; cloud metadata on some clouds)
        "224.0.0.1",  # multicast
        "[ff02::1]",  # IPv6 multicast
        "[::ffff:169.254.169.254]",  # IPv4-mapped link-local metadata
        "[2002:a9fe:a9fe::1]",  # 6to4 wrapping 169.254.169.254
        "[64:ff9b::a9fe:a9fe]",  # NAT64 wrapping 169.254.169.254
        "192.0.0.8",  # IETF protocol assignments
        "[::a9fe:a9fe]",  # IPv4-compatible wrapping 169.254.169.254
        "[::ffff:0:a9fe:a9fe]",  # SIIT wrapping 169.254.169.254
        "[64:ff9b:1::808:808]",  # NAT64 local-use prefix (RFC 8215), even around 8.8.8.8
        "240.0.0.1",  # reserved
        "0.0.0.0",
    ],
)
def test_fetch_refuses_every_non_public_address(net: FakeNet, host: str) -> None:
    address = re.escape(str(ipaddress.ip_address(host.strip("[]"))))
    with pytest.raises(FetchError, match=rf"private address \({address}[ )].*ALLOW_PRIVATE=true"):
        fetch_text(f"http://{host}/latest/meta-data/", timeout=2)
    assert net.connects == []


def test_fetch_refuses_a_name_with_any_non_public_address(net: FakeNet) -> None:
    net.names["mixed.test"] = [[PUBLIC_IP, "100.64.0.1"]]
    with pytest.raises(FetchError, match=r"mixed\.test resolves to a private address \(100"):
        fetch_text("http://mixed.test/", timeout=2)
    assert net.connects == []


def test_fetch_connects_to_the_checked_address_not_a_rebound_one(net: FakeNet) -> None:
    with serve() as (public_port, public_seen), serve() as (internal_port, internal_seen):
        net.public_port = public_port
        # DNS rebinding: the check sees a public address, any later lookup gets loopback
        net.names["rebind.test"] = [[PUBLIC_IP], ["127.0.0.1"]]
        text = fetch_text(f"http://rebind.test:{internal_port}/page")
    assert text.startswith("# Fly.io docs")
    assert internal_seen == []
    assert net.lookups == ["rebind.test"]
    assert net.connects == [(PUBLIC_IP, internal_port)]
    assert public_seen == [("/page", f"rebind.test:{internal_port}")]


def test_fetch_checks_every_redirect_hop(net: FakeNet) -> None:
    with serve() as (port, public_seen), serve() as (internal_port, internal_seen):
        net.public_port = port
        net.names["site.test"] = [[PUBLIC_IP]]
        net.names["metadata.test"] = [["169.254.169.254"]]
        site = f"http://site.test:{port}"
        moved = fetch_text(site + "/moved")
        assert moved.startswith(f"[redirected to {site}/page]\n# Fly.io docs")
        for to, refusal in [
            (f"http://127.0.0.1:{internal_port}/page", r"private address \(127\.0\.0\.1\)"),
            ("http://metadata.test/latest/", r"private address \(169\.254\.169\.254\)"),
            ("file:///etc/passwd", "only http"),
        ]:
            with pytest.raises(FetchError, match=rf"site\.test:{port}/redirect.* redirects to "):
                fetch_text(f"{site}/redirect?to={to}")
            with pytest.raises(FetchError, match=refusal):
                fetch_text(f"{site}/redirect?to={to}")
    assert internal_seen == []
    assert {host for _, host in public_seen} == {f"site.test:{port}"}
    assert {address for address, _ in net.connects} == {PUBLIC_IP}


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_to_the_checked_address_still_verifies_the_host_name(
    net: FakeNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path, "secure.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust this certificate only
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    sni: list[str | None] = []

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    tls.sni_callback = remember_sni
    net.names["secure.test"] = [["127.0.0.1"]]
    net.names["other.test"] = [["127.0.0.1"]]
    with serve(tls) as (port, seen):
        text = fetch_text(f"https://secure.test:{port}/page", allow_private=True)
        assert text.startswith("# Fly.io docs")
        assert sni == ["secure.test"]
        assert seen == [("/page", f"secure.test:{port}")]
        assert net.connects == [("127.0.0.1", port)]
        with pytest.raises(FetchError, match="certificate verify failed"):
            fetch_text(f"https://other.test:{port}/page", allow_private=True)
    assert sni == ["secure.test", "other.test"]


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
