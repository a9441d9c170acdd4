"""Review of issue 14 (adversarial): a finding superseded during a run is no longer
verified, so the writer must not cite it. Real SQLite file, the corpus on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from memshelf.llm.fake import ScriptedChatModel
from memshelf.team import build_team, run_team
from memshelf.team.findings import Evidence, decide, get_finding, propose
from memshelf.team.sources import Sources

from .conftest import _answer, team_structured

QUESTION = "How long does a queen honeybee live?"
OLD = "A queen honeybee lasts one year."  # wrong, verified long ago; 2 of 3 question words


def _superseding(messages: list[BaseMessage], schema: Any) -> Any:
    """The team's fake, except that the supervisor researches and consolidation calls
    every new finding a replacement of the first neighbour shown."""
    if getattr(schema, "__name__", "") == "Route":
        return schema.model_validate({"next": "research"})
    if getattr(schema, "__name__", "") == "Decision":
        return schema.model_validate({"op": "SUPERSEDE", "target": 1})
    return team_structured(messages, schema)


def test_a_finding_superseded_in_the_run_is_not_cited(store: BaseStore, sources: Sources) -> None:
    url = next(h.url for h in sources.search_web("queen honeybee lifespan") if "queen" in h.url)
    doc = sources.read(url)
    old = propose(
        store, "bees", OLD, Evidence(url, OLD, doc.sha256, doc.fetched_at), author="researcher"
    )
    decide(store, "bees", old, "verified", by="verifier", why="seeded for the test")
    model = ScriptedChatModel(respond=_answer, structured=_superseding)
    team = build_team(store=store, model=model, sources=sources, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", QUESTION)
    assert get_finding(store, "bees", old).value["status"] == "superseded"
    assert old not in result.cited
    assert "one year" not in result.answer, result.answer
