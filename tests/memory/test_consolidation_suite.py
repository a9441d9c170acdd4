"""The consolidation scenarios with the deterministic fake model (every case marked
``fake``); the same suite runs with the local model in benchmarks/memory_bench.py and,
for a sample, in ``test_local_model_consolidates_the_key_cases``."""

from __future__ import annotations

from pathlib import Path

import pytest

from memshelf.embeddings import FakeEmbedder
from memshelf.eval.memory_suite import load_cases, run_case
from memshelf.llm.fake import rule_based_chat_model
from memshelf.stores.sqlite import SqliteStore

CASES = load_cases(Path(__file__).parent / "data" / "consolidation.json")


def test_the_suite_covers_every_behaviour() -> None:
    assert len(CASES) >= 40
    ops = [c["op"] for c in CASES]
    for op in ("ADD", "UPDATE", "SUPERSEDE", "NOOP", "NONE"):
        assert ops.count(op) >= 4, op


@pytest.mark.parametrize("case", [c for c in CASES if c.get("fake")], ids=lambda c: c["name"])
def test_fake_model_decides_right(case: dict, tmp_path: Path) -> None:
    with SqliteStore(
        tmp_path / "s.db", index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    ) as store:
        result = run_case(store, rule_based_chat_model(), case, "u")
    assert result.passed, (result.problems, result.current)
