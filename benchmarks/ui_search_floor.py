"""Where the inspector's search floor (``memshelf.ui.memories.SEARCH_MIN_SCORE``) sits:
the scores of related and unrelated memories for a few queries, with the real embedder.

    .venv/bin/python benchmarks/ui_search_floor.py [--embeddings local]

A small shelf (the new-user trial's memories plus a few) is searched for queries whose
related memories are labelled by hand. Prints every score, then the lowest related
and the highest unrelated score, and whether the floor separates them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from memshelf.config import Settings
from memshelf.ops import memories as ops
from memshelf.stores import open_store
from memshelf.ui.memories import SEARCH_MIN_SCORE

SHELF = (
    "Alice plays the cello on Thursday evenings.",
    "Alice is learning Rust in 2026.",
    "Alice lives in Lisbon.",
    "Alice's dog is called Biscuit.",
    "Alice deploys on Fly.io in the fra region",
    "Prefers oolong tea in the morning",
    "Listens to jazz records while cooking",
    "Works as a nurse",
)
RELATED = {
    "music": {SHELF[0], SHELF[6]},
    "what I drink": {SHELF[5]},
    "programming": {SHELF[1]},
    "where do I live": {SHELF[2]},
    "pets": {SHELF[3]},
    "cello": {SHELF[0]},
    "my job": {SHELF[7]},
    "oolong tea": {SHELF[5]},
    "green tea": {SHELF[5]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default="local")
    args = parser.parse_args()
    related: list[float] = []
    unrelated: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), embeddings=args.embeddings, chat_model="fake")
        with open_store(settings=settings) as store:
            for text in SHELF:
                ops.add_memory(store, "alice", text)
            for query, wanted in RELATED.items():
                found = ops.search_memories(store, "alice", query, k=len(SHELF))
                print(f"{query!r}: " + ", ".join(f"{r.text[:24]!r} {r.score:.3f}" for r in found))
                for r in found:
                    (related if r.text in wanted else unrelated).append(float(r.score or 0.0))
    low, high = min(related), max(unrelated)
    print(f"lowest related {low:.3f}; highest unrelated {high:.3f}; floor {SEARCH_MIN_SCORE}")
    print("floor separates them" if high < SEARCH_MIN_SCORE <= low else "floor does NOT separate")


if __name__ == "__main__":
    main()
