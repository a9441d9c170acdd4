"""One quote on a loopback page, and a finding of it: the setup that the failed-reads and
unreachable-review tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.team.findings import Evidence, propose
from memshelf.team.sources import Sources
from memshelf.team.verify import verify_finding
from tests._http import Page, serving_page

TEAM = "bees"
QUOTE = "In summer a worker honeybee lives about five to six weeks."


def propose_quote(store: BaseStore, sources: Sources, source: str) -> str:
    """A finding of QUOTE, its evidence ``source`` as ``sources`` read it now; its key."""
    doc = sources.read(source)
    evidence = Evidence(doc.source, QUOTE, doc.sha256, doc.fetched_at)
    return propose(store, TEAM, QUOTE, evidence, author="researcher")


class Verified(NamedTuple):
    origin: str  # the page is at f"{origin}/page" (and at every other path)
    page: Page  # what the server answers: change it to change the source
    sources: Sources  # allow-listing exactly ``origin``
    key: str  # the finding, verified


@contextmanager
def verified_quote(store: BaseStore, model: BaseChatModel, tmp_path: Path) -> Iterator[Verified]:
    """QUOTE on an HTML page served on 127.0.0.1, and a finding of it proposed from that
    page and verified."""
    page = Page(f"<html><body><p>{QUOTE}</p></body></html>".encode(), "text/html")
    with serving_page(page) as origin:
        sources = Sources.create(Settings(data_dir=tmp_path / "d"), allow_origins=[origin])
        key = propose_quote(store, sources, f"{origin}/page")
        assert verify_finding(store, TEAM, key, sources, model).ok
        yield Verified(origin, page, sources, key)
