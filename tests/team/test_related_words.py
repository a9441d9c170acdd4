"""A verified finding in the source's compound words answers a question in plain ones
(issue 14): "How far do bees forage?" meets "Honeybees usually forage ...", and "What is
the lifespan of a queen bee?" meets "A queen honeybee usually lives ...". Deterministic
fake model, a real SQLite store, no sources: the answer can only come from the finding.
The grounding check stays strict: a reworded sentence whose question words are not in
the quote ("Bees forage ...") is still dropped, and the claim is given as verified."""

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
from memshelf.team.findings import Cause, Evidence, content_sha256, decide, propose
from memshelf.team.grounding import answering, coverage, related, supports
from memshelf.team.nodes import NO_ANSWER
from memshelf.team.sources import Sources
from memshelf.team.text import same_word

from .conftest import team_structured

FORAGE = "Honeybees usually forage within 3 kilometres of the hive."
QUEEN = "A queen honeybee usually lives two to five years."


def test_words_meet_by_stem_or_compound() -> None:
    assert same_word("bees", "honeybees") and same_word("bee", "honeybee")
    assert same_word("lives", "living") and same_word("Queens", "queen")
    assert not same_word("bee", "be") and not same_word("see", "bee")
    assert not same_word("hive", "archive"[2:])  # "chive": a head of two letters is no compound


def test_a_plain_word_question_is_related_to_the_compound_finding() -> None:
    assert related("How far do bees forage?", [{"claim": FORAGE}]) == [0]
    assert related("What is the lifespan of a queen bee?", [{"claim": QUEEN}]) == [0]
    # a compound shows the finding to the writer, but never answers a question unread
    assert coverage("How far do bees forage?", FORAGE) == 0.5
    elephant = "An elephant has four legs."
    assert coverage("How many legs does an ant have?", elephant) == 0.5
    assert answering("How many legs does an ant have?", [{"claim": elephant}]) == []
    # a short question is related on one shared word, a longer one still needs two
    assert related("How far do bees fly?", [{"claim": FORAGE}]) == [0]
    assert related("How long do drones live in winter?", [{"claim": QUEEN}]) == []


def test_grounding_stays_strict_about_the_question_words() -> None:
    # "bees" is the question's word; the quote says "honeybees": not the same statement
    assert not supports(
        "Bees forage within 3 kilometres of the hive.", FORAGE, "How far do bees forage?"
    )
    assert supports(FORAGE, FORAGE, "How far do bees forage?")


def _verified(store: BaseStore, claim: str) -> str:
    evidence = Evidence("https://example.org/bees", claim, content_sha256(claim), "2026-01-01")
    key = propose(store, "bees", claim, evidence, author="researcher", cause=Cause("ana", "t0"))
    decide(store, "bees", key, "verified", by="verifier", why="quote found (exact)")
    return key


def _writer(text: str) -> ScriptedChatModel:
    def respond(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        return text

    return ScriptedChatModel(respond=respond, structured=team_structured)


@pytest.mark.parametrize(
    ("question", "claim", "draft"),
    [
        ("How far do bees forage?", FORAGE, f"{FORAGE} [1]"),
        ("What is the lifespan of a queen bee?", QUEEN, f"{QUEEN} [1]"),
    ],
)
def test_the_team_answers_from_the_compound_finding(
    store: BaseStore, tmp_path: Path, question: str, claim: str, draft: str
) -> None:
    key = _verified(store, claim)
    bare = Sources.create(Settings(data_dir=tmp_path / "data"))
    team = build_team(store=store, model=_writer(draft), sources=bare, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", question)
    assert not result.answer.startswith(NO_ANSWER), result.answer
    assert result.answer.startswith(claim.rstrip(".") + " [1].")
    assert result.cited == [key]
    assert "not an answer" not in result.answer
