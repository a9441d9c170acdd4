"""The consolidation scenario suite: a message against a seeded shelf, judged by the ops
the engine chose and by what is current afterwards. Used by tests (fake model) and by
``benchmarks/memory_bench.py`` (the local model)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.memory import Fact, Provenance, consolidate, list_facts
from memshelf.memory.writer import ExtractionJob, remember


@dataclass
class CaseResult:
    name: str
    expected: str
    ops: list[str]
    current: list[str]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return cases


def run_case(
    store: BaseStore, model: BaseChatModel, case: dict[str, Any], user_id: str
) -> CaseResult:
    """Seed the shelf, remember the message, and check the ops and what is current."""
    import time

    for text in case.get("memories", []):
        consolidate(store, None, user_id, Fact(text), Provenance(source="seed"))
    job = ExtractionJob(user_id=user_id, thread_id="t", message_id="m", text=case["message"])
    start = time.perf_counter()
    outcomes = remember(store, model, [job])
    seconds = time.perf_counter() - start
    ops: list[str] = [o.op for o in outcomes]
    current = [str(i.value.get("text", "")) for i in list_facts(store, user_id)]
    result = CaseResult(case["name"], case["op"], ops, current, seconds=seconds)
    changed = [op for op in ops if op != "NOOP"]
    if case["op"] == "NONE":
        if changed:
            result.problems.append(f"stored something: {ops}")
    elif case["op"] not in ops:
        result.problems.append(f"expected {case['op']}, got {ops or 'nothing'}")
    joined = " | ".join(current).lower()
    for needle in case.get("has", []):
        if needle.lower() not in joined:
            result.problems.append(f"no current memory mentions {needle!r}")
    for needle in case.get("lacks", []):
        if needle.lower() in joined:
            result.problems.append(f"{needle!r} is still current")
    return result


def run_suite(
    store: BaseStore,
    model: BaseChatModel,
    cases: Iterable[dict[str, Any]],
    *,
    progress: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    results = []
    for i, case in enumerate(cases):
        result = run_case(store, model, case, f"case-{i}")
        results.append(result)
        if progress:
            progress(result)
    return results
