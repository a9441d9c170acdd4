"""A web search provider answering malformed JSON (a list, a result that is not an
object) is a failed step of the team run, not a crash (issue 14's review). A real HTTP
server on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.team.graph import build_team, run_team
from memshelf.team.sources import Sources
from tests.agent.test_fetch_errors import answering


def test_a_malformed_search_reply_is_a_failed_step(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path
) -> None:
    with answering([{"url": "https://bees.example.org"}]) as origin:
        settings = Settings(
            data_dir=tmp_path / "d", web_search="tavily", web_search_url=origin,
            tavily_api_key="k",
        )  # fmt: skip
        sources = Sources.create(settings, allow_origins=[origin])
        team = build_team(store=store, model=model, sources=sources, checkpointer=InMemorySaver())
        result = run_team(team, "bees", "ana", "t1", "How long do worker bees live?")
    failed = [c for c in result.tool_calls if c["tool"] == "web_search"]
    assert failed and failed[0]["ok"] is False
    step = next(s for s in result.steps if "could not search the web" in str(s))
    assert "not Tavily-compatible" in str(step)
    assert result.answer
