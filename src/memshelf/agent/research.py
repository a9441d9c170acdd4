"""Research tools' workings: fetching pages, searching the web, indexing the user's notes.

Kept apart from the LangChain tool wrappers so each piece is testable on its own:
``fetch_text`` speaks real HTTP with size, time and address limits; web search
goes to a pluggable provider (disabled, with a clear message, until configured);
``NotesIndex`` keeps a folder of Markdown/text files indexed in the store with
the same embedder as memories.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from langgraph.store.base import BaseStore

from memshelf.memory.shelf import all_items
from memshelf.namespaces import encode_label

USER_AGENT = "memshelf/0.1 (+research agent)"
NOTE_SUFFIXES = {".md", ".markdown", ".txt"}
NOTE_CHUNK_CHARS = 800
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, readable text) of an HTML page: scripts and styles dropped, blocks on lines."""
    parser = _TextExtractor()
    parser.feed(html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return " ".join(parser.title.split()), "\n".join(line for line in lines if line)


class FetchError(Exception):
    """A URL the agent may not or could not fetch; the message is shown to the model.

    ``temporary`` says whether a retry may succeed without anything changing at the
    source (a timeout, a refused or reset connection, a DNS failure, HTTP 5xx, 408, 429).
    Every other failure is an answer about the source (404, not text, a redirect to a
    private address or one too many), which is why the verifier rejects on it."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


TEMPORARY_STATUSES = frozenset({408, 429})  # and every 5xx


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_REDIRECTS = 5
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv4-compatible (::a.b.c.d, deprecated) and SIIT (::ffff:0:a.b.c.d) wrap an IPv4 address too.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")
# NAT64 local-use prefix (RFC 8215): translated by the operator's own gateway, never public.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# IETF protocol assignments: not internet hosts, yet Python 3.11 calls most of them global.
_IETF_ASSIGNMENTS = ipaddress.IPv4Network("192.0.0.0/24")


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, NAT64), which must pass too."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    inner = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address in _NAT64 or address in _IPV4_COMPATIBLE or address in _SIIT:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return inner


def _is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a unicast internet address (so not loopback, private, shared
    100.64/10, link-local cloud metadata, multicast, reserved, or one of these wrapped in IPv6)."""
    for candidate in (address, *_embedded_ipv4(address)):
        if not candidate.is_global or candidate.is_multicast or candidate.is_reserved:
            return False
        if isinstance(candidate, ipaddress.IPv6Address) and candidate in _NAT64_LOCAL:
            return False
        if isinstance(candidate, ipaddress.IPv4Address) and candidate in _IETF_ASSIGNMENTS:
            return False
    return True


def _resolve_checked(url: httpx.URL, allow_private: bool) -> list[IPAddress]:
    """Resolve the URL's host once and return the addresses to connect to.

    Every address must be public: a name that also maps to an internal address is refused
    outright rather than filtered, so the outcome never depends on the resolver's order.
    """
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise FetchError(f"cannot resolve {url.host}: {exc}") from exc
    except OSError as exc:
        raise FetchError(f"cannot resolve {url.host}: {exc}", temporary=True) from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise FetchError(f"cannot resolve {url.host}: no addresses.", temporary=True)
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                shown = " wrapping ".join(map(str, (address, *_embedded_ipv4(address))))
                raise FetchError(
                    f"{url.host} resolves to a private address ({shown}), not a public "
                    "internet one; fetching it is disabled "
                    "(set MEMSHELF_FETCH_ALLOW_PRIVATE=true to allow)."
                )
    return addresses


@contextlib.contextmanager
def _pinned_get(
    url: httpx.URL, addresses: list[IPAddress], timeout: float
) -> Iterator[httpx.Response]:
    """GET ``url`` over a connection to one of the checked ``addresses``.

    The request goes to the address itself (no second DNS lookup that a rebinding name
    could answer differently); the Host header, TLS SNI and certificate check still use
    the URL's host name. Environment proxies and .netrc are ignored, since a proxy would
    resolve the name itself; SSL_CERT_FILE/SSL_CERT_DIR are still honoured.
    """
    headers = {"User-Agent": USER_AGENT, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    transport = httpx.HTTPTransport(trust_env=True)
    with httpx.Client(timeout=timeout, trust_env=False, transport=transport) as client:
        failure: httpx.ConnectError | httpx.ConnectTimeout | None = None
        for address in addresses:
            request = client.build_request(
                "GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions
            )
            try:
                response = client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # try the next address
                failure = exc
                continue
            try:
                yield response
            finally:
                response.close()
            return
    raise failure or FetchError(f"cannot connect to {url.host}.", temporary=True)


def _http_url(url: str, base: httpx.URL | None = None) -> httpx.URL:
    """``url`` (relative to ``base`` if given) as an http(s) URL, or a FetchError saying why not."""
    try:
        parsed = base.join(url) if base is not None else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"{url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(f"only http(s) URLs can be fetched, got {url!r}")
    return parsed


def fetch_text(
    url: str,
    *,
    max_bytes: int = 1_000_000,
    timeout: float = 10.0,
    max_chars: int = 8000,
    allow_private: bool = False,
    max_redirects: int = MAX_REDIRECTS,
) -> str:
    """The readable text of a web page (or plain text file), truncated to ``max_chars``.

    Redirects are followed up to ``max_redirects`` hops, each hop resolved and checked like
    the first; the answer names the final URL so a redirect is never silent.
    """
    target = _http_url(url)
    source: httpx.URL | None = None  # the URL that redirected to ``target``
    body = bytearray()
    truncated = False
    for _hop in range(max_redirects + 1):
        try:
            addresses = _resolve_checked(target, allow_private)
        except FetchError as exc:
            if source is None:
                raise
            raise FetchError(
                f"{source} redirects to {target}: {exc}", temporary=exc.temporary
            ) from None
        try:
            with _pinned_get(target, addresses, timeout) as response:
                if response.is_redirect:
                    location = response.headers["location"]
                    try:
                        target, source = _http_url(location, base=target), target
                    except FetchError as exc:
                        raise FetchError(f"{target} redirects to {location}: {exc}") from None
                    continue
                response.raise_for_status()
                kind = response.headers.get("content-type", "").lower()
                if kind and not any(t in kind for t in ("text/", "html", "json", "xml")):
                    raise FetchError(f"{target} is {kind.split(';')[0]}, not text.")
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        truncated = True
                        del body[max_bytes:]
                        break
                encoding = response.encoding or "utf-8"
                break
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"{target} did not answer within {timeout:g} s.", temporary=True
            ) from exc
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            again = code >= 500 or code in TEMPORARY_STATUSES
            raise FetchError(f"{target} answered HTTP {code}.", temporary=again) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:  # refused, reset, cut
            raise FetchError(f"could not fetch {target}: {exc}", temporary=True) from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"could not fetch {target}: {exc}") from exc
    else:
        raise FetchError(f"{url} redirected more than {max_redirects} times; giving up.")
    text = body.decode(encoding, errors="replace")
    title = ""
    if "<html" in text[:2000].lower() or "html" in kind:
        title, text = html_to_text(text)
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    redirected = f"[redirected to {target}]\n" if source is not None else ""
    header = f"# {title}\n" if title else ""
    return redirected + header + text + ("\n[truncated]" if truncated else "")


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str


class WebSearchDisabled(Exception):
    """No web search provider is configured."""


def web_search(
    query: str,
    *,
    provider: str,
    api_key: str | None,
    base_url: str | None = None,
    max_results: int = 5,
    timeout: float = 15.0,
) -> list[SearchHit]:
    """Search the web through the configured provider (``tavily``), or explain how to enable it."""
    if provider in ("", "none"):
        raise WebSearchDisabled(
            "Web search is disabled. Set MEMSHELF_WEB_SEARCH=tavily and TAVILY_API_KEY to "
            "enable it; until then, use fetch_url with a known URL or search_notes."
        )
    if provider != "tavily":
        raise WebSearchDisabled(f"Unknown web search provider {provider!r}; supported: tavily.")
    if not api_key:
        raise WebSearchDisabled("MEMSHELF_WEB_SEARCH=tavily needs TAVILY_API_KEY to be set.")
    payload: dict[str, Any] = {"query": query, "max_results": max_results, "api_key": api_key}
    response = httpx.post(
        (base_url or "https://api.tavily.com") + "/search", json=payload, timeout=timeout
    )
    response.raise_for_status()
    reply = response.json()
    results = reply.get("results", []) if isinstance(reply, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise FetchError(
            "web search answered JSON that is not {'results': [{...}, ...]}: the provider "
            f"at {base_url or 'https://api.tavily.com'} is not Tavily-compatible."
        )
    return [
        SearchHit(str(r.get("title", "")), str(r.get("url", "")), str(r.get("content", ""))[:500])
        for r in results
    ]


def notes_namespace(user_id: str) -> tuple[str, str]:
    return ("notes", encode_label(user_id))


def _chunks(text: str, size: int = NOTE_CHUNK_CHARS) -> list[str]:
    out: list[str] = []
    current = ""
    for para in (p.strip() for p in text.split("\n\n")):
        if not para:
            continue
        if current and len(current) + len(para) > size:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
        while len(current) > size:
            out.append(current[:size])
            current = current[size:]
    if current:
        out.append(current)
    return out


class NotesIndex:
    """A folder of the user's notes, kept in sync with the store (changed files re-indexed)."""

    def __init__(self, store: BaseStore, user_id: str, folder: Path) -> None:
        self.store = store
        self.namespace = notes_namespace(user_id)
        self.folder = folder

    def sync(self) -> int:
        """Index new and changed files, drop deleted ones; returns how many files changed."""
        if not self.folder.is_dir():
            return 0
        indexed: dict[str, tuple[str, list[str]]] = {}
        for item in all_items(self.store, self.namespace):
            path, sha = item.value.get("path"), item.value.get("sha256")
            entry = indexed.setdefault(str(path), (str(sha), []))
            entry[1].append(item.key)
        changed = 0
        seen: set[str] = set()
        for file in sorted(self.folder.rglob("*")):
            if file.suffix.lower() not in NOTE_SUFFIXES or not file.is_file():
                continue
            rel = file.relative_to(self.folder).as_posix()
            seen.add(rel)
            data = file.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            old = indexed.get(rel)
            if old and old[0] == sha:
                continue
            for key in old[1] if old else []:
                self.store.delete(self.namespace, key)
            text = data.decode("utf-8", errors="replace")
            for i, chunk in enumerate(_chunks(text)):
                value = {"text": chunk, "path": rel, "sha256": sha, "chunk": i}
                self.store.put(self.namespace, f"{rel}#{i}", value, ttl=None)
            changed += 1
        for rel, (_, keys) in indexed.items():
            if rel not in seen:
                for key in keys:
                    self.store.delete(self.namespace, key)
                changed += 1
        return changed

    def search(self, query: str, limit: int = 4) -> list[tuple[str, str, float | None]]:
        """(path, chunk text, score) of the best matching passages."""
        self.sync()
        hits = self.store.search(self.namespace, query=query, limit=limit)
        return [(str(h.value.get("path")), str(h.value.get("text")), h.score) for h in hits]
