"""Store benchmark: memshelf's SQLite store vs LangGraph's InMemoryStore and SqliteStore.

Same run, same 384-dim vectors (precomputed, so only the store is measured):
N items in one namespace, then searches (top 10) and gets. Optionally the
"many namespaces" workload: M items spread over K namespaces, searching
within one. Prints a Markdown table, writes JSON and a PNG of latency vs items.

    memshelf bench store --items 10000,100000 --backend sqlite,langgraph-sqlite
    python benchmarks/store_bench.py --items 100000 --searches 1000 --gets 1000
    python benchmarks/store_bench.py --spread 1000000:10000 --peers none

LangGraph's SqliteStore needs ``enable_load_extension`` for sqlite-vec, which
this Python lacks; the script swaps in ``pysqlite3`` (pip install
pysqlite3-binary sqlite-vec) for that peer only. It reads ``text_fields``, so
both ``fields`` and ``text_fields`` are passed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langgraph.store.base import BaseStore, PutOp

from memshelf.eval.metrics import percentile

DIMS = 384
TOP_K = 10


class Vectors:
    """Deterministic clustered unit vectors, looked up by text: embedding costs nothing."""

    def __init__(self, n: int, queries: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((max(n // 100, 1), DIMS)).astype(np.float32)
        mat = centres[rng.integers(0, len(centres), n)]
        mat += 0.6 * rng.standard_normal((n, DIMS)).astype(np.float32)
        self.docs = mat / np.linalg.norm(mat, axis=1, keepdims=True)
        picks = rng.integers(0, n, queries)
        qmat = self.docs[picks] + 0.3 * rng.standard_normal((queries, DIMS)).astype(np.float32)
        self.queries = qmat / np.linalg.norm(qmat, axis=1, keepdims=True)
        self.lookup: dict[str, np.ndarray] = {}

    def doc_text(self, i: int) -> str:
        text = f"doc-{i}"
        self.lookup[text] = self.docs[i]
        return text

    def query_text(self, j: int) -> str:
        text = f"q{j}"
        self.lookup[text] = self.queries[j]
        return text

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.lookup[t].tolist() for t in texts]


def pct(samples: list[float], p: float) -> float:
    """Percentile of durations in seconds, in milliseconds."""
    return percentile(samples, p) * 1000


def load(store: BaseStore, vecs: Vectors, namespaces: Sequence[tuple[str, ...]], n: int) -> float:
    """Put n items round-robin over namespaces in batches of 1000; returns items/s."""
    start = time.perf_counter()
    batch: list[PutOp] = []
    for i in range(n):
        ns = namespaces[i % len(namespaces)]
        batch.append(PutOp(ns, f"k{i}", {"text": vecs.doc_text(i), "i": i}))
        if len(batch) == 1000:
            store.batch(batch)
            batch = []
    if batch:
        store.batch(batch)
    return n / (time.perf_counter() - start)


def time_calls(fn: Callable[[int], Any], count: int) -> list[float]:
    out = []
    for j in range(count):
        start = time.perf_counter()
        fn(j)
        out.append(time.perf_counter() - start)
    return out


def exact_top(vecs: Vectors, members: np.ndarray, j: int) -> set[str]:
    sims = vecs.docs[members] @ vecs.queries[j]
    return {f"k{members[i]}" for i in np.argsort(-sims)[:TOP_K]}


def run_backend(
    name: str,
    make: Callable[[Vectors], BaseStore],
    vecs: Vectors,
    n: int,
    n_ns: int,
    searches: int,
    gets: int,
    path: Path | None,
) -> dict[str, Any]:
    gc.collect()
    namespaces = [("bench", f"ns{k}") for k in range(n_ns)]
    store = make(vecs)
    rate = load(store, vecs, namespaces, n)
    target = namespaces[0]
    members = np.arange(0, n, n_ns)
    qtexts = [vecs.query_text(j) for j in range(searches)]
    first = time_calls(lambda j: store.search(target, query=qtexts[j], limit=TOP_K), 1)
    search = time_calls(lambda j: store.search(target, query=qtexts[j], limit=TOP_K), searches)
    recall = []
    for j in range(min(searches, 50)):
        got = {h.key for h in store.search(target, query=qtexts[j], limit=TOP_K)}
        recall.append(len(got & exact_top(vecs, members, j)) / TOP_K)
    rng = np.random.default_rng(1)
    keys = [int(x) for x in rng.choice(members, gets)]
    get = time_calls(lambda j: store.get(target, f"k{keys[j]}"), gets)
    size = None
    if path is not None:
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    close = getattr(store, "close", None)
    if close:
        close()
    return {
        "backend": name,
        "items": n,
        "namespaces": n_ns,
        "items_in_searched_namespace": len(members),
        "put_items_per_s": rate,
        "first_search_ms": first[0] * 1000,
        "search_p50_ms": pct(search, 50),
        "search_p95_ms": pct(search, 95),
        "searches": searches,
        "recall_at_10": statistics.mean(recall),
        "get_p50_ms": pct(get, 50),
        "get_p95_ms": pct(get, 95),
        "bytes_per_item": (size / n) if size else None,
    }


def make_memshelf(path: Path, keyword_weight: float) -> Callable[[Vectors], BaseStore]:
    from memshelf.stores.sqlite import SqliteStore

    def make(vecs: Vectors) -> BaseStore:
        return SqliteStore(
            path,
            index={"embed": vecs.embed, "dims": DIMS, "fields": ["text"]},
            keyword_weight=keyword_weight,
        )

    return make


def make_inmemory(vecs: Vectors) -> BaseStore:
    from langgraph.store.memory import InMemoryStore

    return InMemoryStore(index={"embed": vecs.embed, "dims": DIMS, "fields": ["text"]})


def make_langgraph_sqlite(path: Path) -> Callable[[Vectors], BaseStore]:
    def make(vecs: Vectors) -> BaseStore:
        try:
            import pysqlite3
        except ImportError as exc:
            raise ValueError(
                "langgraph-sqlite needs an sqlite3 that loads extensions: "
                "pip install pysqlite3-binary sqlite-vec (or memshelf[bench])"
            ) from exc

        sys.modules["sqlite3"] = pysqlite3
        from langgraph.store.sqlite import SqliteStore as LGSqliteStore

        conn = pysqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        index: Any = {
            "embed": vecs.embed,
            "dims": DIMS,
            "fields": ["text"],
            "text_fields": ["text"],
        }
        store = LGSqliteStore(conn, index=index)
        store.setup()
        store.close = conn.close  # type: ignore[attr-defined]
        return store

    return make


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = [
        "| backend | items (in ns) | put items/s | search p50 / p95 ms | first search ms "
        "| recall@10 | get p50 / p95 ms | bytes/item | search p95 vs memshelf |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["search_p95_ms"] / base["search_p95_ms"]
        size = f"{r['bytes_per_item']:,.0f}" if r["bytes_per_item"] else "-"
        lines.append(
            f"| {r['backend']} | {r['items']:,} ({r['items_in_searched_namespace']:,}) "
            f"| {r['put_items_per_s']:,.0f} | {r['search_p50_ms']:.2f} / {r['search_p95_ms']:.2f} "
            f"| {r['first_search_ms']:.1f} | {r['recall_at_10']:.3f} "
            f"| {r['get_p50_ms']:.3f} / {r['get_p95_ms']:.3f} | {size} | {ratio:.1f}x |"
        )
    return "\n".join(lines)


BACKENDS = ("sqlite", "langgraph-memory", "langgraph-sqlite", "redis", "langgraph-redis")


def run_bench(
    item_counts: list[int],
    backends: list[str],
    *,
    namespaces: int = 1,
    searches: int = 1000,
    gets: int = 1000,
    peer_searches: int = 100,
    keyword_weight: float = 0.3,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per (item count, backend); memshelf first so ratios have a base."""
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    if any(b in ("redis", "langgraph-redis") for b in backends):
        raise ValueError("the Redis backends are not part of this memshelf build yet")
    rows: list[dict[str, Any]] = []
    for n in item_counts:
        vecs = Vectors(n, max(searches, peer_searches))
        tmp = Path(tempfile.mkdtemp(prefix="memshelf-bench-"))
        log(
            f"# {n:,} items over {namespaces:,} namespaces; {platform.platform()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}"
        )
        for backend in backends:
            if backend == "sqlite":
                path = tmp / "memshelf.db"
                row = run_backend(
                    "memshelf sqlite",
                    make_memshelf(path, keyword_weight),
                    vecs,
                    n,
                    namespaces,
                    searches,
                    gets,
                    path,
                )
            elif backend == "langgraph-memory":
                row = run_backend(
                    "langgraph InMemoryStore",
                    make_inmemory,
                    vecs,
                    n,
                    namespaces,
                    peer_searches,
                    gets,
                    None,
                )
            else:
                path = tmp / "langgraph.db"
                row = run_backend(
                    "langgraph SqliteStore (sqlite-vec)",
                    make_langgraph_sqlite(path),
                    vecs,
                    n,
                    namespaces,
                    peer_searches,
                    gets,
                    path,
                )
            rows.append(row)
            log(table([r for r in rows if r["items"] == n]))
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Search p95 vs items, one line per backend; False when matplotlib is missing."""
    from memshelf.eval.report import pyplot, save

    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = sorted((r["items"], r["search_p95_ms"]) for r in rows if r["backend"] == backend)
        ax.plot([m[0] for m in mine], [m[1] for m in mine], marker="o", label=backend)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("items")
    ax.set_ylabel("search p95 (ms)")
    save(plt, fig, ax, path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="100000", help="comma list of item counts")
    parser.add_argument("--spread", help="ITEMS:NAMESPACES, e.g. 1000000:10000")
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument(
        "--peers",
        default="langgraph-memory,langgraph-sqlite",
        help="comma list of langgraph-memory, langgraph-sqlite, or none",
    )
    parser.add_argument("--peer-searches", type=int, default=100)
    parser.add_argument("--keyword-weight", type=float, default=0.3)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/store_bench.json"))
    args = parser.parse_args()
    counts, namespaces = [int(x) for x in args.items.split(",")], 1
    if args.spread:
        total, namespaces = (int(x) for x in args.spread.split(":"))
        counts = [total]
    peers = [] if args.peers == "none" else args.peers.split(",")
    rows = run_bench(
        counts,
        ["sqlite", *peers],
        namespaces=namespaces,
        searches=args.searches,
        gets=args.gets,
        peer_searches=args.peer_searches,
        keyword_weight=args.keyword_weight,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"\nJSON: {args.json}")
