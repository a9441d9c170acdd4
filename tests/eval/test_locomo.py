"""The evaluation on a tiny hand-made conversation whose right answers are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import ConfigurationError
from memshelf.eval import evidence_recall, load, run_locomo, select, token_f1
from memshelf.eval.bm25 import BM25
from tests.cli.helpers import run_cli

TINY = [
    {
        "sample_id": "tiny-1",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:00 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ana", "dia_id": "D1:1", "text": "I adopted a grey cat named Pixel."},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! I started rowing lessons."},
                {"speaker": "Ana", "dia_id": "D1:3", "text": "My sister lives in Porto now."},
            ],
            "session_2_date_time": "9:00 am on 3 June, 2023",
            "session_2": [
                {
                    "speaker": "Ben",
                    "dia_id": "D2:1",
                    "text": "Rowing went well today.",
                    "blip_caption": "a boat on a river",
                },
                {"speaker": "Ana", "dia_id": "D2:2", "text": "Pixel the cat broke a vase."},
            ],
        },
        "qa": [
            {
                "question": "What is the name of Ana's cat?",
                "answer": "Pixel",
                "evidence": ["D1:1"],
                "category": 4,
            },
            {
                "question": "Where does Ana's sister live?",
                "answer": "Porto",
                "evidence": ["D1:3"],
                "category": 4,
            },
            {
                "question": "What did the cat Pixel do?",
                "answer": "broke a vase",
                "evidence": ["D1:1", "D2:2"],
                "category": 1,
            },
            {
                "question": "What sport is Ben learning?",
                "adversarial_answer": "tennis",
                "evidence": ["D1:2"],
                "category": 5,
            },
        ],
    }
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def test_metric_by_hand() -> None:
    ranked = [["D1:2"], ["D1:1"], ["D2:2"]]
    assert evidence_recall(["D1:1", "D2:2"], ranked, 1) == 0.0
    assert evidence_recall(["D1:1", "D2:2"], ranked, 2) == 0.5
    assert evidence_recall(["D1:1", "D2:2"], ranked, 3) == 1.0
    assert evidence_recall([], ranked, 3) == 0.0
    assert token_f1("a broke vase", "broke a vase") == 1.0
    assert token_f1("Lisbon", "Porto") == 0.0


def test_loading_and_selection(data: Path) -> None:
    convs = load(data)
    assert len(convs[0].turns) == 5 and convs[0].turns[3].caption == "a boat on a river"
    assert [q.category for q in convs[0].scored_questions()] == [4, 4, 1]
    assert select(convs, "0") == convs
    with pytest.raises(ConfigurationError, match="has 1"):
        select(convs, "0-2")


def test_run_on_tiny_conversation_finds_the_evidence(data: Path) -> None:
    report = run_locomo(load(data), FakeEmbedder(64), 64, ks=(1, 2, 5))
    assert report["questions"] == 3  # category 5 left out
    assert report["recall"]["5"] == 1.0  # five turns: everything is in the top 5
    r = report["recall"]
    assert r["1"] <= r["2"] <= r["5"]
    # only D1:3 mentions a sister, so that single-hop question is answered at rank 1
    assert report["by_category"]["4"]["1"] >= 0.5
    assert set(report["baselines"]) == {"bm25", "dense_inmemory", "bm25_doc", "dense_inmemory_doc"}
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0


def test_bm25_baseline() -> None:
    bm25 = BM25(["the cat sat", "a dog ran", "cat and dog"])
    assert bm25.top("cat", 5) == [0, 2] or bm25.top("cat", 5) == [2, 0]
    assert bm25.top("zebra", 5) == []


def test_cli_writes_json_markdown_and_plot(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.json"
    result = run_cli(
        "eval",
        "locomo",
        "--data",
        str(data),
        "--json",
        str(out),
        "--k",
        "1,5",
        data=tmp_path,
        MEMSHELF_EMBEDDINGS="fake:64",
    )
    assert result.returncode == 0, result.stderr
    assert "| memshelf (hybrid) |" in result.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "turns" and set(report["recall"]) == {"1", "5"}
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["locomo", "--k", "0"], "positive whole numbers"),
        (["locomo", "--k", "abc"], "positive whole numbers"),
        (["locomo", "--conversations", "x"], "positions in the file"),
        (["locomo", "--conversations", "2-1"], "selects nothing"),
        (["locomo", "--pool", "0"], "--pool"),
        (["locomo", "--keyword-weight", "2"], "--keyword-weight"),
        (["qa", "--questions", "0"], "--questions"),
    ],
)
def test_bad_options_are_usage_errors_not_zero_scores(
    data: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    """A script must not record a typo as a real 0.0 (new-user trial, issue 16)."""
    command, *rest = args
    result = run_cli(
        "eval", command, "--data", str(data), *rest, data=tmp_path, MEMSHELF_EMBEDDINGS="fake:64"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in " ".join((result.stdout + result.stderr).split())
    assert "bug in memshelf" not in result.stderr and "0.0" not in result.stdout


def test_qa_with_scripted_models(data: Path) -> None:
    from langchain_core.messages import BaseMessage

    from memshelf.eval.qa import run_qa
    from memshelf.llm.fake import ScriptedChatModel

    def first_memory(messages: list[BaseMessage], kwargs: dict) -> str:  # type: ignore[type-arg]
        lines = [ln for ln in str(messages[0].content).splitlines() if ln.startswith("- ")]
        return json.loads(lines[0][2:]) if lines else "unknown"

    def contains_gold(messages: list[BaseMessage], schema: type) -> object:
        text = str(messages[-1].content)
        gold = text.split("Gold answer: ")[1].split("\n")[0].lower()
        return schema(correct=gold in text.split("Candidate: ")[1].lower())

    answerer = ScriptedChatModel(respond=first_memory)
    grader = ScriptedChatModel(structured=contains_gold)
    report = run_qa(load(data), FakeEmbedder(64), 64, answerer, grader, k=3)
    assert report["questions"] == 3
    sister = next(s for s in report["samples"] if "sister" in s["question"])
    assert "Porto" in sister["answer"] and sister["correct"] is True
    assert 0 < report["j"] <= 1 and 0 < report["f1"] < 1
    assert set(report["by_category"]) == {"1", "4"}


@pytest.mark.real_llm
def test_qa_smoke_with_the_local_model(data: Path) -> None:
    from memshelf.embeddings import shared_local_embedder
    from memshelf.eval.qa import run_qa
    from memshelf.llm import chat_model

    model = chat_model("local")
    report = run_qa(
        select(load(data), "0"), shared_local_embedder(), 384, model, model, k=3, per_conversation=2
    )
    assert report["questions"] == 2
    assert all(s["answer"] for s in report["samples"])
    assert report["j"] >= 0.5  # the cat's name and the sister's city are in the top memories


def test_facts_mode_traces_facts_to_their_turns(data: Path) -> None:
    from memshelf.llm import chat_model

    report = run_locomo(
        load(data),
        FakeEmbedder(64),
        64,
        ks=(1, 5),
        mode="facts",
        model=chat_model("fake"),
        limit_sessions=1,
        baselines=False,
    )
    assert report["mode"] == "facts" and report["questions"] == 3
    # session 1 holds the cat and sister turns; the vase (D2:2) is left out by --limit-sessions
    assert report["by_category"]["4"]["5"] == 1.0
    assert report["by_category"]["1"]["5"] == 0.5


def test_duplicate_turns_do_not_break_the_dense_baseline(tmp_path: Path) -> None:
    """LangGraph's InMemoryStore fails on a batch with repeated texts; the harness must not."""
    import copy

    raw: list[dict[str, Any]] = copy.deepcopy(TINY)
    session = raw[0]["conversation"]["session_1"]
    session += [
        {"speaker": "Ben", "dia_id": "D1:4", "text": "Thanks!"},
        {"speaker": "Ana", "dia_id": "D1:5", "text": "Thanks!"},
        {"speaker": "Ben", "dia_id": "D1:6", "text": "Thanks!"},
    ]
    path = tmp_path / "dupes.json"
    path.write_text(json.dumps(raw))
    report = run_locomo(load(path), FakeEmbedder(64), 64, ks=(1, 5, 10))
    assert report["baselines"]["dense_inmemory"]["recall"]["10"] == 1.0  # every turn indexed
    out = run_cli(
        "eval", "locomo", "--data", str(path), "--no-baselines", "--json", str(tmp_path / "r.json"),
        data=tmp_path / "d", MEMSHELF_EMBEDDINGS="fake:64",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "baselines" not in json.loads((tmp_path / "r.json").read_text())
