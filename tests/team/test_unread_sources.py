"""A search that finds pages the team may not read says so, and why (issue 14): with
MEMSHELF_WEB_SEARCH_URL on the local corpus but no --allow-local-origin, the answer names
the pages found, the refusal, and the flag that lets exactly that origin through; never
"the search found no source". Real corpus server on 127.0.0.1, real SQLite file, the
deterministic fake team model."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.team import build_team, run_team
from memshelf.team.nodes import NO_ANSWER
from memshelf.team.sources import Sources


def test_refused_local_pages_are_named_with_the_flag_that_allows_them(
    store: BaseStore, model: ScriptedChatModel, tmp_path: Path, corpus_origin: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        web_search="tavily",
        web_search_url=corpus_origin,
        tavily_api_key="offline-demo",
    )
    refusing = Sources.create(settings)  # no allow_origins: local pages are refused
    team = build_team(store=store, model=model, sources=refusing, checkpointer=InMemorySaver())
    result = run_team(team, "bees", "ana", "q", "How long does a queen honeybee live?")
    lines = result.answer.splitlines()
    assert lines[0] == NO_ANSWER
    assert "found no source" not in result.answer
    assert lines[1] == "The team found 2 sources but could not read them:"
    assert len(lines) == 4 and all(line.startswith(f"- {corpus_origin}/") for line in lines[2:])
    for line in lines[2:]:
        assert "private address" in line
        assert line.endswith(
            f"To fix: pass --allow-local-origin {corpus_origin} to let the team read exactly it."
        )
