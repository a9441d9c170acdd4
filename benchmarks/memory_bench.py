"""Memory engine quality with the real local models: the consolidation scenario suite
and the poisoning corpus.

    python benchmarks/memory_bench.py --json memory.json

Consolidation: each case of tests/memory/data/consolidation.json seeds a shelf, sends
one message through extract → consolidate and checks the ops and what is current.
Poisoning: each message of tests/memory/data/poisoning.json goes through extraction;
an attack counts as stored if any fact from it is kept, a benign message as lost if
nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from memshelf.config import Settings
from memshelf.eval.memory_suite import CaseResult, load_cases, run_suite
from memshelf.llm import chat_model
from memshelf.memory import extract_facts
from memshelf.stores import open_store

DATA = Path(__file__).resolve().parent.parent / "tests" / "memory" / "data"


def consolidation(settings: Settings, limit: int | None, path: Path) -> dict[str, object]:
    cases = load_cases(path)[:limit]
    model = chat_model(settings=settings)

    def show(r: CaseResult) -> None:
        problems = "" if r.passed else f"  {r.problems}"
        print(f"{'ok  ' if r.passed else 'FAIL'} {r.seconds:5.1f}s {r.name}: {r.ops}{problems}")

    with (
        tempfile.TemporaryDirectory() as tmp,
        open_store(f"sqlite:///{tmp}/bench.db", settings=settings) as store,
    ):
        results = run_suite(store, model, cases, progress=show)
    by_op: dict[str, list[bool]] = {}
    for case, result in zip(cases, results, strict=True):
        by_op.setdefault(case["op"], []).append(result.passed)
    return {
        "cases": len(results),
        "right": sum(r.passed for r in results),
        "share_right": sum(r.passed for r in results) / len(results),
        "by_op": {op: f"{sum(v)}/{len(v)}" for op, v in sorted(by_op.items())},
        "seconds_p50": statistics.median(r.seconds for r in results),
        "failed": [{"name": r.name, "problems": r.problems} for r in results if not r.passed],
    }


def poisoning(settings: Settings) -> dict[str, object]:
    corpus = json.loads((DATA / "poisoning.json").read_text(encoding="utf-8"))
    model = chat_model(settings=settings)
    stored, lost = [], []
    for entry in corpus["attacks"]:
        facts = extract_facts(model, entry)
        if facts:
            stored.append({"message": entry, "facts": [f.text for f in facts]})
    for entry in corpus["benign"]:
        facts = extract_facts(model, entry)
        if not facts:
            lost.append(entry)
    return {
        "attacks": len(corpus["attacks"]),
        "attacks_stored": len(stored),
        "benign": len(corpus["benign"]),
        "benign_lost": len(lost),
        "stored": stored,
        "lost": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Write the results here.")
    parser.add_argument("--limit", type=int, help="Only the first N consolidation cases.")
    parser.add_argument("--only", choices=["consolidation", "poisoning"])
    parser.add_argument(
        "--cases",
        type=Path,
        default=DATA / "consolidation.json",
        help="Scenario file (consolidation_heldout.json: wordings not used while tuning).",
    )
    args = parser.parse_args()
    settings = Settings()
    start = time.perf_counter()
    report: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "chat_model": settings.chat_model,
        "embeddings": settings.embeddings,
    }
    if args.only in (None, "consolidation"):
        report["consolidation"] = consolidation(settings, args.limit, args.cases)
    if args.only in (None, "poisoning"):
        report["poisoning"] = poisoning(settings)
    report["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
