"""The team's fixtures: a SQLite store on a real file, the corpus served on 127.0.0.1, the
sources allow-listing exactly that origin, and a deterministic fake team model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from memshelf.config import Settings
from memshelf.embeddings import FakeEmbedder
from memshelf.llm.fake import ScriptedChatModel
from memshelf.llm.fake import _structured as fake_structured
from memshelf.stores.sqlite import SqliteStore
from memshelf.team.corpus_server import NOTES, serve_corpus
from memshelf.team.sources import Sources


def _prompt(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content) if messages else ""


def team_structured(messages: list[BaseMessage], schema: Any) -> Any:
    """Routing, claim picking and judgement by rule: the ``fake`` provider's own rules."""
    return fake_structured(messages, schema)


def _answer(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    listed = re.findall(r"^\[(\d+)\] (.+)$", _prompt(messages), re.M)
    if not listed:
        return "The team found no verified answer."
    return " ".join(f"{claim} [{n}]" for n, claim in listed)


def team_fake_model() -> ScriptedChatModel:
    return ScriptedChatModel(respond=_answer, structured=fake_structured)


@pytest.fixture
def model() -> ScriptedChatModel:
    return team_fake_model()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    with SqliteStore(tmp_path / "team.db", index=index) as opened:
        yield opened


@pytest.fixture(scope="session")
def corpus_origin() -> Iterator[str]:
    with serve_corpus() as origin:
        yield origin


@pytest.fixture
def sources(tmp_path: Path, corpus_origin: str) -> Sources:
    settings = Settings(
        data_dir=tmp_path / "data",
        web_search="tavily",
        web_search_url=corpus_origin,
        tavily_api_key="offline-demo",
    )
    return Sources.create(settings, notes_dir=NOTES, allow_origins=[corpus_origin])
