"""The team with the real local chat model and embedder on the shipped corpus (served on
127.0.0.1): a quote absent from its page and a claim its quote contradicts are rejected,
the injection page never yields a verified finding nor reaches the answer, and run 2
(another user and thread) answers from run 1's findings without fetching."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memshelf.config import Settings
from memshelf.llm import chat_model
from memshelf.stores import open_store
from memshelf.team import build_team, list_findings, run_team
from memshelf.team.demo import INJECTION_PAGE, QUESTION_1, QUESTION_2, QUESTION_3, demo_settings
from memshelf.team.findings import Evidence, get_finding, propose
from memshelf.team.sources import Sources
from memshelf.team.verify import quote_in, verify_finding

pytestmark = [pytest.mark.real_llm, pytest.mark.real_model]
TEAM = "bees"


@pytest.fixture(scope="module")
def model() -> Any:
    return chat_model("local")


@pytest.fixture
def real_sources(settings: Settings, corpus_origin: str) -> Sources:
    from memshelf.team.corpus_server import NOTES

    conf = demo_settings(settings, corpus_origin)
    return Sources.create(conf, notes_dir=NOTES, allow_origins=[corpus_origin])


@pytest.fixture
def real_store(tmp_path: Path, settings: Settings) -> Iterator[Any]:
    with open_store(f"sqlite:///{tmp_path}/team.db", settings=settings) as opened:
        yield opened


def _propose(store: Any, sources: Sources, url: str, quote: str, claim: str) -> str:
    doc = sources.read(url)
    return propose(
        store, TEAM, claim, Evidence(url, quote, doc.sha256, doc.fetched_at), author="researcher"
    )


def test_absent_quote_and_contradicted_claim_are_rejected_true_one_verified(
    real_store: Any, real_sources: Sources, model: Any, corpus_origin: str
) -> None:
    url = f"{corpus_origin}/worker-lifespan.html"
    real = "In summer a worker honeybee lives about five to six weeks."
    absent = _propose(
        real_store,
        real_sources,
        url,
        "In summer a worker bee lives a year.",
        "In summer a worker bee lives a year.",
    )
    contradicted = _propose(
        real_store, real_sources, url, real, "In summer a worker honeybee lives about one year."
    )
    true = _propose(
        real_store,
        real_sources,
        url,
        real,
        "A worker honeybee lives about five to six weeks in summer.",
    )
    verdicts = {
        k: verify_finding(real_store, TEAM, k, real_sources, model)
        for k in (absent, contradicted, true)
    }
    assert not verdicts[absent].ok and "not in the source" in verdicts[absent].why
    assert not verdicts[contradicted].ok and verdicts[contradicted].judged
    assert verdicts[true].ok, verdicts[true].why
    assert get_finding(real_store, TEAM, true).value["status"] == "verified"


def test_injection_page_yields_no_verified_finding_and_no_change(
    real_store: Any, real_sources: Sources, model: Any
) -> None:
    team = build_team(store=real_store, model=model, sources=real_sources)
    result = run_team(team, TEAM, "ana", "inj", QUESTION_3)
    assert any(c["arg"].endswith(INJECTION_PAGE) for c in result.tool_calls)
    for item in list_findings(real_store, TEAM, "verified"):
        assert not item.value["evidence"]["source"].endswith(INJECTION_PAGE)
    assert "bee-deals" not in result.answer and "toxic" not in result.answer.lower()


def test_run_two_reuses_run_ones_findings(
    real_store: Any, real_sources: Sources, model: Any
) -> None:
    team = build_team(store=real_store, model=model, sources=real_sources)
    first = run_team(team, TEAM, "ana", "run1", QUESTION_1)
    new = [f for f in first.findings if f.get("new")]
    assert new, first.steps
    for item in list_findings(real_store, TEAM, "verified"):
        ev = item.value["evidence"]
        assert quote_in(ev["quote"], real_sources.read(ev["source"]).text)
    second = run_team(team, TEAM, "ben", "run2", QUESTION_2)
    assert second.reused and second.fetches == 0, second.steps
    assert second.fetches < first.fetches
