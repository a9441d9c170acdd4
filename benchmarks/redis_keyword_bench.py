"""Redis keyword search with and without the word budget, on one big namespace.

    python benchmarks/redis_keyword_bench.py --memories 100000 --queries 999

Real sentences (``corpus.py``) go into one namespace of a keyword-only Redis
store (no embedder, so the timing is keyword search alone: word counts + BM25),
on a fresh local Redis 8 started for the run. Each LoCoMo question is searched
twice, alternating which goes first: with the budget (the query's rarest words
while their items add up to ``KEYWORD_BUDGET``, ``stores/_redis_keyword.py``)
and with every word, as before issue 12. "top-10" is the share of the
every-word top 10 the budgeted search also returns. "server CPU" is the Redis
server's own CPU time per search (``INFO cpu`` around each one), which a busy
machine does not inflate the way it does wall-clock time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from langgraph.store.base import PutOp

from memshelf.eval.storebench import pct
from memshelf.stores import _redis_keyword
from memshelf.stores.redis import RedisStore
from memshelf.testing import redis_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

NS = ("team", "bench", "findings")


def server_cpu(store: RedisStore) -> float:
    """Seconds of CPU the Redis server has used (user + system)."""
    info = store._r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextmanager
def every_word() -> Iterator[None]:
    """Keyword search as before the budget: every content word, no counting."""
    counts, chosen = _redis_keyword.term_counts, _redis_keyword.budget_terms
    _redis_keyword.term_counts = lambda r, index, terms, scope="": dict.fromkeys(terms, 1)
    _redis_keyword.budget_terms = lambda counts: list(counts)
    try:
        yield
    finally:
        _redis_keyword.term_counts, _redis_keyword.budget_terms = counts, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=999)
    args = parser.parse_args()
    docs, _, questions, _ = corpus.load(max(args.memories + 1000, 102_000))
    print(f"# {os.cpu_count()} cores, {platform.platform()}, load {os.getloadavg()[0]:.1f}")
    with redis_server() as url:
        store = RedisStore(url, prefix="kwbench")
        start = time.perf_counter()
        for base in range(0, args.memories, 1000):
            store.batch(
                [
                    PutOp(NS, f"m{i}", {"text": docs[i]})
                    for i in range(base, min(args.memories, base + 1000))
                ]
            )
        print(f"# filled {args.memories:,} items in {time.perf_counter() - start:.0f} s")
        samples: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        tops: dict[bool, list[list[str]]] = {False: [], True: []}
        for i, question in enumerate(questions[: args.queries]):
            for baseline in (i % 2 == 0, i % 2 == 1):
                with every_word() if baseline else nullcontext():
                    used = server_cpu(store)
                    start = time.perf_counter()
                    hits = store.search(NS, query=question, limit=10)
                    samples[baseline].append(time.perf_counter() - start)
                    cpu[baseline].append(server_cpu(store) - used)
                tops[baseline].append([h.key for h in hits if h.score is not None])
        shared = [
            len(set(new) & set(old)) / len(old)
            for new, old in zip(tops[False], tops[True], strict=True)
            if old
        ]
        print(f"# load after: {os.getloadavg()[0]:.1f}")
        print("| keyword search | p50 ms | p95 ms | server CPU ms mean / p95 | queries | top-10 |")
        print("|---|---|---|---|---|---|")
        for baseline, label in ((True, "every word (before)"), (False, "rarest words, budget")):
            agree = "1.000" if baseline else f"{sum(shared) / max(len(shared), 1):.3f}"
            print(
                f"| {label} | {pct(samples[baseline], 50):.2f} | {pct(samples[baseline], 95):.2f} "
                f"| {1000 * sum(cpu[baseline]) / len(cpu[baseline]):.2f} / "
                f"{pct(cpu[baseline], 95):.2f} | {len(samples[baseline])} | {agree} |"
            )
        store.drop()
        store.close()


if __name__ == "__main__":
    main()
