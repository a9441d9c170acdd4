"""Research tools' workings: fetching pages, searching the web, indexing the user's notes.

Kept apart from the LangChain tool wrappers so each piece is testable on its own:
``fetch_text`` speaks real HTTP with size, time and address limits; web search
goes to a pluggable provider (disabled, with a clear message, until configured);
``NotesIndex`` keeps a folder of Markdown/text files indexed in the store with
the same embedder as memories.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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
    """A URL the agent may not or could not fetch; the message is shown to the model."""


def _check_address(host: str, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
        ):
            raise FetchError(
                f"{host} resolves to a private address ({address}); fetching it is disabled "
                "(set MEMSHELF_FETCH_ALLOW_PRIVATE=true to allow)."
            )


def fetch_text(
    url: str,
    *,
    max_bytes: int = 1_000_000,
    timeout: float = 10.0,
    max_chars: int = 8000,
    allow_private: bool = False,
) -> str:
    """The readable text of a web page (or plain text file), truncated to ``max_chars``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise FetchError(f"only http(s) URLs can be fetched, got {url!r}")
    _check_address(parsed.hostname, allow_private)
    body = bytearray()
    truncated = False
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"User-Agent": USER_AGENT}) as response,
        ):
            if response.is_redirect:
                target = response.headers.get("location", "")
                raise FetchError(f"{url} redirects to {target}; fetch that URL instead.")
            response.raise_for_status()
            kind = response.headers.get("content-type", "").lower()
            if kind and not any(t in kind for t in ("text/", "html", "json", "xml")):
                raise FetchError(f"{url} is {kind.split(';')[0]}, not text.")
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    truncated = True
                    del body[max_bytes:]
                    break
            encoding = response.encoding or "utf-8"
    except httpx.TimeoutException as exc:
        raise FetchError(f"{url} did not answer within {timeout:g} s.") from exc
    except httpx.HTTPStatusError as exc:
        raise FetchError(f"{url} answered HTTP {exc.response.status_code}.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch {url}: {exc}") from exc
    text = body.decode(encoding, errors="replace")
    title = ""
    if "<html" in text[:2000].lower() or "html" in kind:
        title, text = html_to_text(text)
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    header = f"# {title}\n" if title else ""
    return header + text + ("\n[truncated]" if truncated else "")


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
    return [
        SearchHit(str(r.get("title", "")), str(r.get("url", "")), str(r.get("content", ""))[:500])
        for r in response.json().get("results", [])
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
