"""LoCoMo second search: sequential (guessed after the first search) vs one batch (guessed
up front from the conversation's speakers) vs no second search, interleaved in one process.

    python benchmarks/locomo_second_search_bench.py --data ../shared/data/locomo-dev.json \
        --embed-cache benchmarks/out/cache/locomo-embeddings.sqlite

Every question is searched each way (order rotating per question), each with an empty
query-vector cache, so every way embeds its queries for real; a shared, loaded machine
moves them alike, so read the ratios. Wall time and process CPU time (every thread:
the store's, the query pool's, ONNX's) per question. The hits of the
two ways are compared key by key and score by score: the batch must not change them.
Document vectors may come from ``--embed-cache``; query vectors never do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from langchain_core.embeddings import Embeddings

from memshelf.embeddings import LOCAL_DIMS, CachedDocuments, shared_local_embedder
from memshelf.eval import load, select
from memshelf.eval.metrics import percentile
from memshelf.eval.runner import LOCOMO_KEYWORD_WEIGHT, LOCOMO_RANKING, turn_store
from memshelf.memory.recall import search_ranked
from memshelf.namespaces import memories_namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo-format JSON file")
    parser.add_argument("--conversations", default=None, help="e.g. 0-4 (default: all)")
    parser.add_argument("--embed-cache", type=Path, default=None, help="document vector cache")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args()
    inner = shared_local_embedder()
    if args.embed_cache is not None:
        from memshelf.eval.embcache import DiskCachedEmbeddings

        embedder: Embeddings = DiskCachedEmbeddings(inner, LOCAL_DIMS, args.embed_cache)
    else:
        embedder = CachedDocuments(inner, LOCAL_DIMS)
    inner.embed_query("warm up")
    # way -> (ranking, subjects known?): "single" is the first search alone, for scale
    ways = {
        "sequential": (LOCOMO_RANKING, False),
        "batch": (LOCOMO_RANKING, True),
        "single": (replace(LOCOMO_RANKING, unnamed_query=0.0), False),
    }
    wall: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    same = differ = 0
    n = 0
    for conv in select(load(args.data), args.conversations):
        store = turn_store(conv, embedder, LOCAL_DIMS, keyword_weight=LOCOMO_KEYWORD_WEIGHT)
        ns = memories_namespace(conv.sample_id)
        with store:
            for q in conv.scored_questions():
                order = list(ways)[n % 3 :] + list(ways)[: n % 3]
                hits: dict[str, list[tuple[str, float | None]]] = {}
                for way in order:
                    ranking, known = ways[way]
                    store.clear_query_cache()
                    start, start_cpu = time.perf_counter(), time.process_time()
                    found = search_ranked(
                        store,
                        ns,
                        q.question,
                        25,
                        ranking,
                        subjects=list(conv.speakers) if known else None,
                    )
                    cpu[way].append(time.process_time() - start_cpu)
                    wall[way].append(time.perf_counter() - start)
                    hits[way] = [(h.key, h.score) for h in found]
                n += 1
                if hits["sequential"] == hits["batch"]:
                    same += 1
                else:
                    differ += 1

    def stats(t: list[float]) -> dict[str, float]:
        return {"p50_ms": percentile(t, 50) * 1000, "p95_ms": percentile(t, 95) * 1000}

    report: dict[str, object] = {
        "questions": n,
        "identical_hits": same,
        "different_hits": differ,
        "load_average": os.getloadavg(),
        "wall": {way: stats(t) for way, t in wall.items()},
        "cpu": {way: stats(t) for way, t in cpu.items()},
        "batch_vs_sequential": {
            f"{kind}_{p}": stats(d["batch"])[p] / stats(d["sequential"])[p]
            for kind, d in (("wall", wall), ("cpu", cpu))
            for p in ("p50_ms", "p95_ms")
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    sys.exit(0 if differ == 0 else 1)


if __name__ == "__main__":
    main()
