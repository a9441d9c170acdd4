"""Where the team reads evidence: web pages (through fetch_url's guard), the team's notes
folder, and web search when configured. Every read returns the exact text and its sha256,
so a finding's evidence names the content it was quoted from and the verifier can re-read it.

The SSRF guard stays on for every URL. ``allow_origins`` lets through only the exact
``http://127.0.0.1:<port>`` origins it lists (the demo's own corpus server), with no
redirects followed; it is empty unless a caller passes it explicitly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from memshelf.agent.research import FetchError, SearchHit, WebSearchDisabled, fetch_text, web_search
from memshelf.config import Settings
from memshelf.errors import ConfigurationError
from memshelf.memory.types import now_iso
from memshelf.team.findings import content_sha256
from memshelf.team.text import rank

NOTE_PREFIX = "note:"
NOTE_SUFFIXES = {".md", ".markdown", ".txt"}


class SourceBlocked(FetchError):
    """A source this reader's own settings keep it from reading: a local address that is
    not allowed, or no notes folder. Nothing was asked of the source, so the failure says
    nothing about it and does not count toward rejecting its findings."""

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=True)


def local_origin(url: str) -> tuple[str, bool] | None:
    """``(scheme://host:port, loopback IP?)`` when the URL names this machine or a private
    network by itself (an IP address, ``localhost``), else None (a public host or name)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return f"{parsed.scheme}://{host}:{port}", False
        return None
    if address.is_global:
        return None
    return f"{parsed.scheme}://{host}:{port}", address.is_loopback


@dataclass(frozen=True)
class Document:
    """One read of a source: the text as read, its sha256 and when."""

    source: str
    text: str
    sha256: str
    fetched_at: str


def loopback_origin(origin: str) -> str:
    """``origin`` normalised, or an error unless it is exactly http://<loopback IP>:<port>."""
    url = httpx.URL(origin)
    try:
        address = ipaddress.ip_address(url.host)
    except ValueError:
        address = None
    if url.scheme != "http" or address is None or not address.is_loopback or not url.port:
        raise ConfigurationError(
            f"{origin!r} cannot be allow-listed: only an exact loopback origin such as "
            "http://127.0.0.1:8765 (the demo's own corpus server) can be."
        )
    if url.path not in ("", "/") or url.query:
        raise ConfigurationError(f"{origin!r}: allow-list an origin, without a path or query.")
    return f"http://{url.host}:{url.port}"


@dataclass
class Sources:
    """The team's readers, configured once from settings."""

    settings: Settings
    notes_dir: Path | None = None
    allow_origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        notes_dir: Path | None = None,
        allow_origins: Iterable[str] = (),
    ) -> Sources:
        return cls(
            settings,
            notes_dir if notes_dir is not None else settings.notes_dir,
            frozenset(loopback_origin(o) for o in allow_origins),
        )

    def _allowed_local(self, url: str) -> bool:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return f"{parsed.scheme}://{parsed.host}:{parsed.port}" in self.allow_origins

    def read(self, source: str) -> Document:
        """The source's text now: a URL is fetched, ``note:<path>`` read from the notes."""
        if source.startswith(NOTE_PREFIX):
            text = self.read_note(source[len(NOTE_PREFIX) :])
        else:
            local = self._allowed_local(source)
            allow_private = local or self.settings.fetch_allow_private
            try:
                text = fetch_text(
                    source,
                    max_bytes=self.settings.fetch_max_bytes,
                    timeout=self.settings.fetch_timeout_s,
                    allow_private=allow_private,
                    max_redirects=0 if local else 5,
                )
            except FetchError as exc:
                # a URL naming a local address we may not reach was never asked anything
                if not allow_private and local_origin(source) is not None:
                    raise SourceBlocked(str(exc)) from exc
                raise
        return Document(source, text, content_sha256(text), now_iso())

    def read_note(self, relative: str) -> str:
        """A note's text; a path outside the notes folder is refused. A missing notes
        folder is :class:`SourceBlocked` (this reader's setting); a note missing from an
        existing folder is gone, a permanent :class:`FetchError` like a 404."""
        if self.notes_dir is None:
            raise SourceBlocked("No notes folder is configured (set MEMSHELF_NOTES_DIR).")
        if not self.notes_dir.is_dir():
            raise SourceBlocked(f"The notes folder {self.notes_dir} does not exist.")
        root = self.notes_dir.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix.lower() not in NOTE_SUFFIXES:
            raise FetchError(f"{relative!r} is not a note in the notes folder.")
        if not path.is_file():
            raise FetchError(f"The note {relative!r} does not exist (any more).")
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise FetchError(
                f"The note {relative!r} cannot be read: {exc}", temporary=True
            ) from exc

    def search_notes(self, query: str, limit: int = 2) -> list[SearchHit]:
        """The notes that best match ``query``, ranked like the web corpus (a small folder:
        no index needed); a note's first ``# `` heading is its title."""
        if self.notes_dir is None or not self.notes_dir.is_dir():
            return []
        docs: dict[str, tuple[str, str]] = {}
        for path in sorted(self.notes_dir.rglob("*")):
            if path.suffix.lower() in NOTE_SUFFIXES and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                heading = next(
                    (line[2:] for line in text.splitlines() if line.startswith("# ")), ""
                )
                docs[path.relative_to(self.notes_dir).as_posix()] = (heading or path.stem, text)
        return [SearchHit(rel, NOTE_PREFIX + rel, "") for rel in rank(query, docs, limit)]

    @property
    def web_search_on(self) -> bool:
        """Whether a web search provider is configured (with its key)."""
        return self.settings.web_search not in ("", "none") and (
            self.settings.tavily_api_key is not None
        )

    @property
    def configured(self) -> bool:
        """Whether the team has anything to search: web search or a notes folder. Without
        either, only URLs written in the question can be read."""
        return self.web_search_on or (self.notes_dir is not None and self.notes_dir.is_dir())

    def search_web(self, query: str, limit: int = 3) -> list[SearchHit]:
        """Web search hits, or none when no provider is configured; a provider that cannot
        be reached is a :class:`FetchError` (the researcher records it and goes on)."""
        key = self.settings.tavily_api_key
        try:
            hits = web_search(
                query,
                provider=self.settings.web_search,
                api_key=key.get_secret_value() if key else None,
                base_url=self.settings.web_search_url,
                max_results=limit,
            )
        except WebSearchDisabled:
            return []
        except (httpx.HTTPError, ValueError) as exc:
            raise FetchError(f"web search failed: {type(exc).__name__}") from exc
        return hits[:limit]
