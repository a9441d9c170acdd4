"""Re-verifying a finding whose source cannot be read now (issue 14).

An unread source says nothing about the claim: the finding keeps its status and
decision, the attempt is one ``verify-failed`` event in its history, and the surfaces
raise :class:`SourceUnreachableError` naming the URL, the reason and the fix. Only a
source that was read (a page, or a 404/410 saying it is gone) can reject the claim.
Real pieces: a SQLite file, the corpus served on 127.0.0.1, real sockets that refuse,
and a server that answers 503.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.ops import findings as ops
from memshelf.stores import open_store
from memshelf.team.corpus_server import NOTES, serve_corpus
from memshelf.team.demo import run_demo
from memshelf.team.findings import (
    Evidence,
    finding_history,
    findings_namespace,
    get_finding,
    list_findings,
    propose,
)
from memshelf.team.sources import Sources
from memshelf.team.verify import verify_finding
from tests._http import Page, free_port, serving_page

TEAM = "bees"
LIFESPAN = "In summer a worker honeybee lives about five to six weeks."


def _verified(store: BaseStore, sources: Sources, url: str, model: ScriptedChatModel) -> str:
    """A finding quoting ``url`` (read now) and verified by the verifier."""
    doc = sources.read(url)
    evidence = Evidence(doc.source, LIFESPAN, doc.sha256, doc.fetched_at)
    key = propose(store, TEAM, LIFESPAN, evidence, author="researcher")
    assert verify_finding(store, TEAM, key, sources, model).ok
    return key


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fetch_timeout_s=5)


def test_a_source_that_went_away_leaves_the_verified_finding_alone(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with serve_corpus() as origin:  # served for the first verification, then stopped
        sources = Sources.create(_settings(tmp_path), allow_origins=[origin])
        url = f"{origin}/worker-lifespan.html"
        key = _verified(store, sources, url, model)
    before = get_finding(store, TEAM, key).value

    verdict = verify_finding(store, TEAM, key, sources, model, by="cli:ana")
    assert not verdict.ok and verdict.unreachable  # why: connection refused
    assert get_finding(store, TEAM, key).value == before  # status, decision, evidence kept
    events = finding_history(store, TEAM, key)
    assert [e["op"] for e in events] == ["propose", "verify", "verify-failed"]
    assert events[-1]["by"] == "cli:ana" and "could not be re-read" in events[-1]["why"]

    with pytest.raises(ops.SourceUnreachableError) as raised:
        ops.verify(store, TEAM, key, sources=sources, model=model, by="cli:ana")
    message = str(raised.value)
    assert message.startswith(f"could not re-read {url}: ")
    assert "keeps its status" in message and f"{origin} is unreachable" in message
    assert f"serve-corpus --port {origin.rsplit(':', 1)[1]}" in message
    assert get_finding(store, TEAM, key).value["status"] == "verified"
    public = ops.unreachable_fix("https://bees.example.org/lifespan", sources)
    assert "The source is unreachable" in public and "allow-local-origin" not in public


def test_a_local_origin_not_allowed_names_allow_local_origin(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with serve_corpus() as origin:
        allowed = Sources.create(_settings(tmp_path), allow_origins=[origin])
        key = _verified(store, allowed, f"{origin}/worker-lifespan.html", model)
        closed = Sources.create(_settings(tmp_path))  # what `findings verify` has by default
        with pytest.raises(ops.SourceUnreachableError) as raised:
            ops.verify(store, TEAM, key, sources=closed, model=model, by="cli:ana")
    assert f"--allow-local-origin {origin}" in str(raised.value)
    assert "private address" in raised.value.reason
    assert get_finding(store, TEAM, key).value["status"] == "verified"


def test_a_5xx_is_unreachable_but_a_404_rejects(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with serve_corpus() as origin:
        sources = Sources.create(_settings(tmp_path), allow_origins=[origin])
        key = _verified(store, sources, f"{origin}/worker-lifespan.html", model)
        doc = sources.read(f"{origin}/queen.html")
        quote = "A queen honeybee usually lives two to five years."
        gone = propose(
            store,
            TEAM,
            quote,
            Evidence(f"{origin}/no-such-page.html", quote, doc.sha256, doc.fetched_at),
            author="researcher",
        )
        verdict = verify_finding(store, TEAM, gone, sources, model)
        assert verdict.unreachable is None and "404" in verdict.why  # read, and gone
        assert get_finding(store, TEAM, gone).value["status"] == "rejected"

    with serving_page(Page(kind=None, status=503)) as failing:
        value = dict(get_finding(store, TEAM, key).value)
        busy = Sources.create(_settings(tmp_path), allow_origins=[failing])
        moved = {**value["evidence"], "source": f"{failing}/worker-lifespan.html"}
        store.put(findings_namespace(TEAM), key, {**value, "evidence": moved})
        verdict = verify_finding(store, TEAM, key, busy, model)
    assert verdict.unreachable and "503" in verdict.unreachable
    assert get_finding(store, TEAM, key).value["status"] == "verified"


def test_a_note_without_its_folder_says_notes(
    store: BaseStore, sources: Sources, model: ScriptedChatModel, tmp_path: Path
) -> None:
    quote = "Hive 3 was treated for Varroa with oxalic acid on 12 December, while it had no brood."
    doc = sources.read("note:apiary-log.md")
    key = propose(
        store,
        TEAM,
        "Hive 3 was treated for Varroa with oxalic acid on 12 December.",
        Evidence(doc.source, quote, doc.sha256, doc.fetched_at),
        author="researcher",
    )
    without = Sources.create(_settings(tmp_path))  # no notes folder
    with pytest.raises(ops.SourceUnreachableError, match="--notes"):
        ops.verify(store, TEAM, key, sources=without, model=model, by="cli:ana")
    assert get_finding(store, TEAM, key).value["status"] == "proposed"
    assert model.calls == []  # nothing was judged


def test_demo_findings_verify_again_once_the_corpus_is_served_on_its_port(
    tmp_path: Path, model: ScriptedChatModel
) -> None:
    """The demo serves the corpus on a fixed port so its findings stay verifiable: gone
    with the demo they are unreachable (status kept), served there again they verify."""
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64")
    port = free_port()
    lines: list[str] = []
    assert run_demo(settings, lines.append, model=model, port=port)
    origin = f"http://127.0.0.1:{port}"
    assert f"corpus on {origin}" in lines[0]
    assert any(f"--allow-local-origin {origin}" in line for line in lines)
    with open_store(settings=settings) as store:
        team = next(iter(store.list_namespaces(prefix=("team",))))[1]
        keys = [i.key for i in list_findings(store, team, "verified")]
        assert keys
        sources = Sources.create(settings, notes_dir=NOTES, allow_origins=[origin])
        web = [
            k for k in keys if get_finding(store, team, k).value["evidence"]["source"][:4] == "http"
        ]
        assert web
        with pytest.raises(ops.SourceUnreachableError):  # the demo's server is gone
            ops.verify(store, team, web[0], sources=sources, model=model, by="cli:ana")
        with serve_corpus(port):
            for key in keys:
                assert ops.verify(store, team, key, sources=sources, model=model, by="cli:ana").ok
        assert {get_finding(store, team, k).value["status"] for k in keys} == {"verified"}


def test_the_fix_fits_the_address(tmp_path: Path) -> None:
    closed = Sources.create(_settings(tmp_path))
    loopback = ops.unreachable_fix("http://127.0.0.1:8765/queen.html", closed)
    assert "--allow-local-origin http://127.0.0.1:8765" in loopback
    assert "serve-corpus --port 8765" in loopback
    private = ops.unreachable_fix("http://10.1.2.3/queen.html", closed)
    assert "MEMSHELF_FETCH_ALLOW_PRIVATE=true" in private and "--allow-local" not in private
    named = ops.unreachable_fix("http://localhost:8000/queen.html", closed)
    assert "MEMSHELF_FETCH_ALLOW_PRIVATE=true" in named
    public = ops.unreachable_fix("https://bees.example.org/queen", closed)
    assert "The source is unreachable" in public
