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
from memshelf.llm.fake import _structured as memory_structured
from memshelf.memory.guard import grounded
from memshelf.stores.sqlite import SqliteStore
from memshelf.team.corpus_server import NOTES, serve_corpus
from memshelf.team.sources import Sources

_WORD = re.compile(r"[a-z0-9]{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _prompt(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content) if messages else ""


def team_structured(messages: list[BaseMessage], schema: Any) -> Any:
    """Routing, claim picking and judgement by rule; consolidation as the memory fake does."""
    name = getattr(schema, "__name__", "")
    prompt = _prompt(messages)
    if name == "Route":
        question = prompt.split("\n", 1)[0]
        listed = prompt.split("VERIFIED FINDINGS:", 1)[-1]
        overlap = len(_words(question) & _words(listed))
        data: Any = {"next": "answer" if overlap >= 2 else "research"}
    elif name == "Pick":
        question = prompt.split("\n", 1)[0]
        numbered = re.findall(r"^(\d+)\. (.+)$", prompt.split("SENTENCES:", 1)[-1], re.M)
        ranked = sorted(numbered, key=lambda n: -len(_words(question) & _words(n[1])))
        fits = ranked and len(_words(question) & _words(ranked[0][1])) >= 2
        data = {"sentence": int(ranked[0][0]) if fits else 0}
    elif name == "Judgement":
        quote = prompt.split("QUOTE: ", 1)[-1].split("\nCLAIM: ", 1)[0]
        claim = prompt.split("\nCLAIM: ", 1)[-1]
        data = {"supported": grounded(claim, quote)}
    else:
        return memory_structured(messages, schema)
    return schema.model_validate(data)


def _answer(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    listed = re.findall(r"^\[(\d+)\] (.+)$", _prompt(messages), re.M)
    if not listed:
        return "The team found no verified answer."
    return " ".join(f"{claim} [{n}]" for n, claim in listed)


def team_fake_model() -> ScriptedChatModel:
    return ScriptedChatModel(respond=_answer, structured=team_structured)


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
