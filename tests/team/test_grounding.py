"""The writer's answer is grounded in the quotes it cites, checked in code (deterministic
fake model): a sentence or number no cited quote holds is dropped, a supported sentence
stays and cites the finding whose quote supports it, and with nothing to research the
team says it could not verify an answer instead of inventing one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.team import build_team, run_team
from memshelf.team.grounding import check_answer, segments, supports
from memshelf.team.nodes import NO_ANSWER
from memshelf.team.sources import Sources
from memshelf.team.text import numbers

from .conftest import team_structured

QUEEN = "A queen honeybee usually lives two to five years."
WORKER = (
    "Workers born in autumn can live four to six months, because they do little foraging "
    "and survive the winter in the cluster."
)
QUESTION = "How long does a queen honeybee live?"


def test_a_number_moved_to_another_subject_is_not_supported() -> None:
    # the trial's answer: the worker page's numbers given to the queen
    assert not supports("A queen lives four to six months.", WORKER, QUESTION)
    assert not supports("A queen honeybee lives 3 to 4 years.", QUEEN, QUESTION)
    assert supports("A queen honeybee usually lives 2 to 5 years.", QUEEN, QUESTION)
    assert supports("A queen honeybee usually lives two to five years [1].", QUEEN, QUESTION)
    assert not supports("A queen honeybee usually lives two to five years.", WORKER, QUESTION)


def test_numbers_are_normalised() -> None:
    assert numbers("up to 2,000 eggs, two to five years") == {"2000", "2", "5"}
    assert numbers("Five weeks") == {"5"}


def test_unsupported_sentence_is_dropped_and_a_citation_repointed() -> None:
    draft = (
        "A queen honeybee usually lives two to five years [1]. "
        "A queen lives four to six months [1]. She lives 3 to 4 years."
    )
    kept, dropped = check_answer(draft, [WORKER, QUEEN], QUESTION)
    assert [(k.text, k.finding) for k in kept] == [
        ("A queen honeybee usually lives two to five years.", 1)  # the queen quote, not [1]
    ]
    assert dropped == ["A queen lives four to six months [1].", "She lives 3 to 4 years."]


def test_a_citation_after_the_full_stop_stays_with_its_sentence() -> None:
    assert segments("One claim here. [1] Another claim there [2].") == [
        "One claim here. [1]",
        "Another claim there [2].",
    ]


def _writer(text: str) -> ScriptedChatModel:
    """The fake team model, with a writer that says ``text``."""

    def respond(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        return text

    return ScriptedChatModel(respond=respond, structured=team_structured)


def _cited_sources(answer: str) -> list[str]:
    return [line for line in answer.split("Sources:\n", 1)[-1].splitlines() if line]


def test_the_team_drops_an_invented_number_and_cites_the_supporting_page(
    store: BaseStore, sources: Sources
) -> None:
    model = _writer(
        "A queen lives four to six months [1]. A queen honeybee usually lives two to five "
        "years [2]. Queens can live 3 to 4 years."
    )
    team = build_team(store=store, model=model, sources=sources, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", QUESTION)
    answer = result.answer.split("\n\nSources:\n", 1)[0]
    assert answer == "A queen honeybee usually lives two to five years [1]."
    assert _cited_sources(result.answer) == [f'[1] {_url(result, "queen.html")} — "{QUEEN}"']
    assert "3 to 4" not in result.answer and "four to six" not in result.answer
    writer = next(s for s in result.steps if s["worker"] == "writer")
    assert len(writer["dropped"]) == 2 and writer["cited"] == 1
    assert result.cited and len(result.cited) == 1


def _url(result: Any, page: str) -> str:
    return next(f["source"] for f in result.findings if f["source"].endswith("/" + page))


def test_nothing_supported_gives_the_verified_claim_or_says_it_could_not_verify(
    store: BaseStore, sources: Sources
) -> None:
    model = _writer("Queens live for decades [1].")
    team = build_team(store=store, model=model, sources=sources, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", QUESTION)
    assert "decades" not in result.answer
    # the claims that answer the question, as verified, each citing its own quote
    for line in _cited_sources(result.answer):
        cited_quote = line.split(' — "', 1)[1].rstrip('"')
        assert cited_quote.rstrip(".") in result.answer

    other = run_team(team, "bees", "ana", "q2", "What colour are the eyes of a drone?")
    assert other.answer.startswith(NO_ANSWER) and "Sources:" not in other.answer
    assert not numbers(other.answer.split("\n", 1)[0])


def test_no_sources_configured_says_so_without_asking_the_model(
    store: BaseStore, tmp_path: Path
) -> None:
    model = _writer("A queen honeybee lives 3 to 4 years.")
    bare = Sources.create(Settings(data_dir=tmp_path / "data"))
    assert not bare.configured
    team = build_team(store=store, model=model, sources=bare, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", QUESTION)
    assert result.answer.startswith(NO_ANSWER)
    assert "no sources" in result.answer and "MEMSHELF_NOTES_DIR" in result.answer
    assert not numbers(result.answer) and result.tool_calls == []
    assert model.calls == []  # nothing to phrase: no model call could invent an answer


@pytest.mark.parametrize(
    ("question", "page"),
    [
        (QUESTION, "queen.html"),
        ("How long do queen bees live?", "queen.html"),
        ("What is the lifespan of a queen bee?", "queen.html"),
        ("How many eggs does a queen lay?", "queen.html"),
        ("How long do worker bees live?", "worker-lifespan.html"),
        ("How long do drones live?", "drones.html"),
        ("What does the waggle dance tell nestmates?", "waggle-dance.html"),
    ],
)
def test_corpus_search_ranks_the_page_about_the_subject_first(question: str, page: str) -> None:
    from memshelf.team.corpus_server import search

    assert search(question)[0][0] == page


def test_notes_search_ranks_by_the_same_rule(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Queens\nA queen lives two to five years.\n")
    (tmp_path / "b.md").write_text("# Workers\nHow long workers live: weeks. Honeybee workers.\n")
    notes = Sources.create(Settings(data_dir=tmp_path / "data"), notes_dir=tmp_path)
    assert [h.url for h in notes.search_notes("How long do queen honeybees live?")] == [
        "note:a.md",
        "note:b.md",
    ]
