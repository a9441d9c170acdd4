"""The team graph with the deterministic fake model: routing, reuse without fetches,
proposed findings kept out of prompts, and the wall between a user's shelf and the team."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from memshelf.errors import MissingUserIdError
from memshelf.llm.fake import ScriptedChatModel
from memshelf.memory import Provenance, list_facts, save_fact
from memshelf.team import build_team, list_findings, run_team
from memshelf.team.findings import Evidence, propose
from memshelf.team.sources import Sources

TEAM = "bees"
Q1 = "How do honeybees show nestmates the direction of food?"
Q2 = "What does the angle of the waggle dance tell other bees?"


@pytest.fixture
def team(store: BaseStore, model: ScriptedChatModel, sources: Sources) -> Any:
    return build_team(store=store, model=model, sources=sources, checkpointer=InMemorySaver())


def _routes(result: Any) -> list[str]:
    return [s["action"] for s in result.steps if s["worker"] == "supervisor"]


def test_run_two_answers_from_run_ones_findings_without_fetching(
    team: Any, store: BaseStore
) -> None:
    first = run_team(team, TEAM, "ana", "r1", Q1)
    assert _routes(first) == ["route: research", "route: answer"]
    assert first.fetches >= 2 and [c["tool"] for c in first.tool_calls][:2] == [
        "web_search",
        "search_notes",
    ]
    new = [f for f in first.findings if f.get("new")]
    assert new and all(f["author"] == "researcher" for f in new)
    assert "[1]" in first.answer and "Sources:" in first.answer

    second = run_team(team, TEAM, "ben", "r2", Q2)
    assert _routes(second) == ["route: answer"]
    assert second.tool_calls == [] and second.fetches == 0
    assert {f["key"] for f in second.reused} & {f["key"] for f in new}
    assert "waggle" in second.answer


def test_unrelated_question_still_researches(team: Any) -> None:
    run_team(team, TEAM, "ana", "r1", Q1)
    other = run_team(team, TEAM, "ana", "r2", "How long does a queen honeybee live?")
    assert _routes(other)[0] == "route: research" and other.fetches > 0


def test_proposed_findings_never_reach_a_prompt(
    team: Any, store: BaseStore, model: ScriptedChatModel
) -> None:
    secret = "Unverified rumour: waggle dances point bees toward the moon."
    propose(
        store,
        TEAM,
        secret,
        Evidence("http://example.org", secret, "0" * 64, "now"),
        author="researcher",
    )
    run_team(team, TEAM, "ana", "r1", Q2)
    shown = [str(m.content) for call in model.calls for m in call]
    assert not any("moon" in text for text in shown)


def test_the_users_shelf_and_the_team_never_write_to_each_other(
    team: Any, store: BaseStore, model: ScriptedChatModel
) -> None:
    personal = "The user keeps three hives on a rooftop in Leeds."
    save_fact(store, "ana", personal, Provenance(source="cli"))
    before = [(i.key, i.value) for i in list_facts(store, "ana", include_superseded=True)]
    run_team(team, TEAM, "ana", "r1", Q1 + " I keep hives on a rooftop in Leeds.")
    after = [(i.key, i.value) for i in list_facts(store, "ana", include_superseded=True)]
    assert after == before  # the team wrote nothing to the user's shelf
    writer_prompts = [
        str(c[-1].content) for c in model.calls if "FACTS ABOUT THE USER" in str(c[-1].content)
    ]
    assert any("rooftop in Leeds" in p for p in writer_prompts)  # recalled for the user
    for item in list_findings(store, TEAM):
        assert "Leeds" not in item.value["text"]  # ...but never shared with the team


def test_a_run_needs_a_team(team: Any) -> None:
    config = {"configurable": {"user_id": "ana", "thread_id": "t"}}
    with pytest.raises(MissingUserIdError, match="team_id"):
        team.invoke({"messages": [("user", Q1)]}, config)
