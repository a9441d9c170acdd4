"""Leave-one-conversation-out cross-validation of LoCoMo retrieval configurations.

    python benchmarks/locomo_cv.py --data ../shared/data/locomo-dev.json \
        --json benchmarks/out/locomo-cv.json

For each conversation, the candidate configuration (keyword weight, RRF,
speaker boost, a second search without the named speakers, a session prior,
diversity reranking: ``memshelf.eval.cv.default_grid``) with the best mean
recall@{5,10,25} on the other conversations is scored on it; the report gives
the mean and spread of those held-out scores, per-category recall pooled over
held-out questions, the same estimate for the grid as it was before issue 16's
second search and session prior, every candidate untuned, and the baselines (BM25 and dense
InMemoryStore on raw turns and on memshelf's document text). Document and
query vectors are cached on disk (``--embed-cache``), so a re-run embeds
nothing; latency is not measured here (``memshelf eval locomo`` does, with
every query embedded for real).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from memshelf.embeddings import LOCAL_DIMS, shared_local_embedder
from memshelf.eval import load, select
from memshelf.eval.cv import cv_markdown, default_grid, run_cv
from memshelf.eval.embcache import DiskCachedEmbeddings

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo-format JSON file")
    parser.add_argument("--conversations", default=None, help="e.g. 0-4 (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument(
        "--embed-cache", type=Path, default=HERE / "out" / "cache" / "locomo-embeddings.sqlite"
    )
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()
    convs = select(load(args.data), args.conversations)
    embedder = DiskCachedEmbeddings(
        shared_local_embedder(), LOCAL_DIMS, args.embed_cache, queries=True
    )
    start = time.perf_counter()
    grid = default_grid()
    # the grid before issue 16's second search and session prior: its estimate, same run
    before = [c.name for c in grid if "unnamed" not in c.name and "session" not in c.name]
    report = run_cv(
        convs,
        embedder,
        LOCAL_DIMS,
        candidates=grid,
        before=before,
        baselines=not args.no_baselines,
        progress=lambda sid: print(f"  {sid} done", file=sys.stderr, flush=True),
    )
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(cv_markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
