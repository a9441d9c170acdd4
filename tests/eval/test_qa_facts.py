"""``eval qa`` in facts mode: the slice, what the answer model is shown, the report.

The fixture (fixtures/locomo-qa-slice.json) has three sessions; Ben starts rowing in
session 1 and quits it for cycling in session 2, Ana states one fact twice, and
session 3 holds facts no question of a two-session slice may need.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import ConfigurationError
from memshelf.eval import load
from memshelf.eval.qa import ANSWER_SYSTEM, run_qa, session_slice
from memshelf.llm.fake import ScriptedChatModel, rule_based_chat_model
from tests.cli.helpers import run_cli

DATA = Path(__file__).parent / "fixtures" / "locomo-qa-slice.json"


def _third_person(messages: list[BaseMessage], schema: Any) -> Any:
    """Extraction rewrites "I ..." as "The user ..." (the engine then names the speaker), so
    a fact never reads like the turn it came from; consolidation is the fake's rules."""
    if getattr(schema, "__name__", "") != "ExtractedFacts":
        return rule_based_chat_model().structured(messages, schema)  # type: ignore[misc]
    said = str(messages[-1].content).split("User message: ", 1)[-1].strip().rstrip(".")
    text = re.sub(r"\bMy\b", "The user's", re.sub(r"^I\b", "The user", said))
    return schema.model_validate({"facts": [{"text": text, "kind": "fact"}]})


def _first_memory(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    lines = [ln for ln in str(messages[0].content).splitlines() if ln.startswith("- ")]
    return str(json.loads(lines[0][2:])) if lines else "unknown"


def _gold_in_candidate(messages: list[BaseMessage], schema: Any) -> Any:
    text = str(messages[-1].content)
    gold = text.split("Gold answer: ")[1].split("\n")[0].lower()
    return schema(correct=gold in text.split("Candidate: ")[1].lower())


def _models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    answerer = ScriptedChatModel(respond=_first_memory, structured=_third_person)
    return answerer, ScriptedChatModel(structured=_gold_in_candidate)


def _shown(model: ScriptedChatModel) -> list[str]:
    """The memory blocks of every answer prompt the model was given."""
    return [
        str(call[0].content)
        for call in model.calls
        if call and str(call[0].content).startswith(ANSWER_SYSTEM)
    ]


def test_slice_keeps_questions_whose_evidence_is_inside_the_first_sessions() -> None:
    conv = load(DATA)[0]
    asked = {n: [q.question for q in session_slice(conv, n).scored_questions()] for n in (1, 2)}
    assert asked[1] == ["What is the name of Ana's cat?", "What did Ben start in May 2023?"]
    assert asked[2] == asked[1] + [
        "Where does Ben's sister live?",
        "What did Ana paint?",
        "What sport does Ben do now?",  # evidence in sessions 1 and 2
    ]  # not "What did Ben's club win?": half of its evidence is in session 3
    assert {t.session for t in session_slice(conv, 2).turns} == {1, 2}
    assert len(session_slice(conv, None).scored_questions()) == 7
    with pytest.raises(ConfigurationError, match="at least 1"):
        session_slice(conv, 0)


def test_facts_mode_shows_the_answer_model_consolidated_facts_not_turns() -> None:
    answerer, grader = _models()
    report = run_qa(
        load(DATA), FakeEmbedder(64), 64, answerer, grader, k=10, mode="facts", limit_sessions=2
    )
    prompts = _shown(answerer)
    assert len(prompts) == report["questions"] == 5
    for prompt in prompts:
        # the fact, dated by the turn it came from, never the turn itself
        assert "(1:00 pm on 8 May, 2023) Ana adopted a grey cat named Pixel" in prompt
        assert "Ana: I adopted" not in prompt
        assert "bike" not in prompt and "club" not in prompt  # session 3 is outside the slice
        # consolidation: rowing was superseded by cycling and leaves recall
        assert "Ben quit rowing lessons and took up cycling" in prompt
        assert "Ben started rowing lessons" not in prompt
    store = report["modes"]["facts"]["store"]
    assert store["turns"] == 7 and store["facts_extracted"] == 6  # the greeting states nothing
    assert store["ops"] == {"ADD": 4, "NOOP": 1, "SUPERSEDE": 1}
    assert store["memories"] == 4 and store["superseded"] == 1
    assert report["j"] == report["modes"]["facts"]["j"]


def test_both_modes_answer_the_same_questions_from_their_own_memories() -> None:
    answerer, grader = _models()
    report = run_qa(
        load(DATA), FakeEmbedder(64), 64, answerer, grader, k=3, mode="both", limit_sessions=2
    )
    assert set(report["modes"]) == {"turns", "facts"}
    turns, facts = report["modes"]["turns"], report["modes"]["facts"]
    assert turns["questions"] == facts["questions"] == report["questions"] == 5
    assert set(turns["by_category"]) == set(facts["by_category"]) == {"1", "2", "4"}
    assert "store" in facts and "store" not in turns
    by_mode = {m: [s for s in report["samples"] if s["mode"] == m] for m in ("turns", "facts")}
    assert [s["question"] for s in by_mode["turns"]] == [s["question"] for s in by_mode["facts"]]
    assert all(any(": I " in m for m in s["memories"]) for s in by_mode["turns"])
    assert not any(": I " in m for s in by_mode["facts"] for m in s["memories"])
    sister = next(s for s in by_mode["facts"] if "sister" in s["question"])
    assert "Porto" in sister["answer"] and sister["correct"] is True
    assert "j" not in report  # two modes: no single score at the top


def test_cli_both_modes_prints_them_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "qa.json"
    result = run_cli(
        "eval", "qa", "--data", str(DATA), "--model", "fake", "--mode", "both",
        "--limit-sessions", "1", "--json", str(out),
        data=tmp_path / "d", MEMSHELF_EMBEDDINGS="fake:64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| | turns | facts |" in result.stdout
    assert "2 questions" in result.stdout and "facts store:" in result.stdout
    report = json.loads(out.read_text())
    assert report["limit_sessions"] == 1 and set(report["modes"]) == {"turns", "facts"}


def test_cli_rejects_an_unknown_mode(tmp_path: Path) -> None:
    result = run_cli(
        "eval", "qa", "--data", str(DATA), "--model", "fake", "--mode", "summaries",
        data=tmp_path / "d", MEMSHELF_EMBEDDINGS="fake:64",
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: Unknown mode 'summaries'. Use --mode turns, facts or both." in result.stderr


@pytest.mark.real_llm
def test_facts_mode_with_the_local_model_and_embedder() -> None:
    """The real path: the local model extracts, consolidates, answers and judges."""
    from memshelf.embeddings import shared_local_embedder
    from memshelf.llm import chat_model

    model = chat_model("local")
    report = run_qa(
        load(DATA), shared_local_embedder(), 384, model, model, k=5, mode="facts", limit_sessions=1
    )
    store = report["modes"]["facts"]["store"]
    assert report["questions"] == 2 and store["turns"] == 3
    assert store["facts_extracted"] >= 2 and store["memories"] >= 2  # rowing, the cat
    cat = next(s for s in report["samples"] if "cat" in s["question"])
    assert any("Pixel" in m and "Ana: " not in m for m in cat["memories"])
    assert all(s["answer"] for s in report["samples"])
