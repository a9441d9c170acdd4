"""Reply latency with extraction off the reply's path, with the real local models.

    python benchmarks/turn_bench.py --turns 4

Each turn states facts in a new thread of one user. ``reply`` is the time until the
graph returns the reply (recall + respond + handing the message to the writer);
``memory`` is the extraction + consolidation that follows in the background. Before
this change extraction ran inside the turn, so the reply arrived after
``reply + memory``: the same turns, the same run, both numbers reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from memshelf.agent import open_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.memory.extract import EXTRACT_SYSTEM

STATEMENTS = [
    "I'm Sukhveer, I deploy on Fly.io, and I prefer answers with code.",
    "I play the cello in a community orchestra on Thursdays.",
    "Our team keeps all production data in PostgreSQL 14.",
    "My daughter Lea starts school next Monday.",
    "I switched from VS Code to Zed last month.",
    "I'm allergic to peanuts, so keep that in mind for recipes.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        rows = []
        with open_agent(settings=settings, tools=[]) as graph:  # closes writer, threads, store
            for i, text in enumerate(STATEMENTS[: args.turns]):
                result = run_turn(graph, "bench", f"t{i}", text)
                reply = sum(v for k, v in result.seconds.items() if k != "memory")
                rows.append({"reply_s": reply, "memory_s": result.seconds.get("memory", 0.0)})
                print(json.dumps({"message": text, **rows[-1], "reply": result.reply}), flush=True)
            model = getattr(graph.memory_writer, "model", None)
            tokens = model._count(EXTRACT_SYSTEM) if hasattr(model, "_count") else None
    report = {
        "turns": len(rows),
        "reply_after_p50_s": statistics.median(r["reply_s"] for r in rows),
        "reply_before_p50_s": statistics.median(r["reply_s"] + r["memory_s"] for r in rows),
        "extraction_per_turn_p50_s": statistics.median(r["memory_s"] for r in rows),
        "extraction_prompt_tokens": tokens,
        "rows": rows,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
