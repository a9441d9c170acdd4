"""With the real local model on the shipped corpus: a queen question finds queen.html, and
every number of the answer is in the quote it cites (one short run)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memshelf.config import Settings
from memshelf.llm import chat_model
from memshelf.stores import open_store
from memshelf.team import build_team, run_team
from memshelf.team.demo import demo_settings
from memshelf.team.sources import Sources
from memshelf.team.text import numbers

pytestmark = [pytest.mark.real_llm, pytest.mark.real_model]
_SOURCE = re.compile(r'^\[(\d+)\] (\S+) — "(.*)"$', re.M)
_CITED = re.compile(r"([^.]*?)\s*\[(\d+)\]")
_CITATION = re.compile(r"\[\d+\]")


@pytest.fixture
def real_store(tmp_path: Path, settings: Settings) -> Iterator[Any]:
    with open_store(f"sqlite:///{tmp_path}/team.db", settings=settings) as opened:
        yield opened


def test_queen_lifespan_answer_cites_queen_page_and_its_numbers(
    real_store: Any, settings: Settings, corpus_origin: str
) -> None:
    from memshelf.team.corpus_server import NOTES

    sources = Sources.create(
        demo_settings(settings, corpus_origin), notes_dir=NOTES, allow_origins=[corpus_origin]
    )
    team = build_team(store=real_store, model=chat_model("local"), sources=sources)
    result = run_team(team, "bees", "ana", "queen", "How long does a queen honeybee live?")
    answer, _, listing = result.answer.partition("\n\nSources:\n")
    cited = {n: (url, quote) for n, url, quote in _SOURCE.findall(listing)}
    assert any(url.endswith("/queen.html") for url, _ in cited.values()), result.answer
    for sentence, n in _CITED.findall(answer):
        assert numbers(sentence) <= numbers(cited[n][1]), (sentence, cited[n])
    said = numbers(_CITATION.sub("", answer))  # "[1]" is a citation, not a number
    assert said <= set().union(*(numbers(q) for _, q in cited.values()))
