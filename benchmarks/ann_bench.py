"""Approximate vector indexes against the exact scan, on real sentence embeddings.

    python benchmarks/ann_bench.py libraries --items 100000 --queries 1000
    python benchmarks/ann_bench.py store --sizes 5000,10000,20000,50000,100000

``libraries`` compares index libraries and their parameters directly;
``store`` runs memshelf's SQLite store search (keyword fusion included) with
its approximate index on and off, in one namespace of each size.

The corpus (see ``corpus.py``) is real English sentences embedded by the local
MiniLM model. ``--items`` of them are indexed; held-out sentences and the
LoCoMo dev questions are the queries. Each candidate is built once, then
searched one query at a time (as a store search does) for top 10 after exact
rescoring of its candidates. recall@10 is against the exact scan of the same
matrix; p50/p95 are per-query milliseconds; the exact numpy scan (what the store
does today) is the peer, measured in the same run. Build time is with the
threads given (``--build-threads``); memory is the index's own footprint on top
of the float32 matrix the store already keeps (growth of the process's RSS).

In ``store`` mode the query vectors are precomputed (as in the store section of
BENCHMARKS.md: "query already embedded"), the query text is the held-out
sentence's own, so keyword search does its real work. Both stores open the same
file; "exact" is ``AnnConfig(min_rows=None)``, "index" is ``AnnConfig(min_rows=1)``.
``--ab-keywords`` adds the index store searched with schema 4's keyword search
(every word, scoped by the namespace's tag), interleaved with the others.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
from memshelf.eval.metrics import percentile

TOP = 10
Searcher = Callable[[np.ndarray, int], np.ndarray]


@contextmanager
def schema_4_keywords() -> Iterator[None]:
    """Keyword search as schema 4 ran it (every word in at most KEYWORD_MAX_DOCS items,
    scoped by the namespace's tag), on the same file: the A/B baseline."""
    from memshelf.stores import _sqlite_keyword as keyword

    saved = keyword.KEYWORD_RANGES, keyword.KEYWORD_BUDGET
    keyword.KEYWORD_RANGES, keyword.KEYWORD_BUDGET = 0, 10**9
    try:
        yield
    finally:
        keyword.KEYWORD_RANGES, keyword.KEYWORD_BUDGET = saved


def exact_top(mat: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    sims = mat @ query
    top = np.argpartition(-sims, k - 1)[:k]
    return top[np.argsort(-sims[top])]


def rescored(mat: np.ndarray, query: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray:
    cand = cand[cand >= 0]
    sims = mat[cand] @ query
    return cand[np.argsort(-sims)[:k]]


def build_usearch(mat: np.ndarray, dtype: str, m: int, ef_add: int, threads: int) -> Any:
    from usearch.index import Index

    index = Index(ndim=mat.shape[1], metric="ip", dtype=dtype, connectivity=m, expansion_add=ef_add)
    index.add(np.arange(len(mat), dtype=np.uint64), mat, threads=threads)
    return index


def build_faiss_hnsw(mat: np.ndarray, m: int, ef_add: int, threads: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(mat.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_add
    index.add(mat)
    faiss.omp_set_num_threads(1)
    return index


def build_faiss_ivf(mat: np.ndarray, nlist: int, threads: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(threads)
    quantizer = faiss.IndexFlatIP(mat.shape[1])
    index = faiss.IndexIVFFlat(quantizer, mat.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(mat[np.random.default_rng(0).permutation(len(mat))[: nlist * 60]])
    index.add(mat)
    faiss.omp_set_num_threads(1)
    return index


def build_hnswlib(mat: np.ndarray, m: int, ef_add: int, threads: int) -> Any:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=mat.shape[1])
    index.init_index(max_elements=len(mat), ef_construction=ef_add, M=m)
    index.add_items(mat, np.arange(len(mat)), num_threads=threads)
    return index


def candidates(kind: str, index: Any, ef: int, pool: int) -> Searcher:
    """A function query -> candidate row numbers (``pool`` of them) for one setting."""
    if kind == "usearch":
        index.expansion_search = ef
        return lambda q, k: index.search(q, pool, threads=1).keys.astype(np.int64)
    if kind == "faiss-hnsw":
        index.hnsw.efSearch = ef
        return lambda q, k: index.search(q[None, :], pool)[1][0]
    if kind == "faiss-ivf":
        index.nprobe = ef
        return lambda q, k: index.search(q[None, :], pool)[1][0]
    index.set_ef(max(ef, pool))
    index.set_num_threads(1)
    return lambda q, k: index.knn_query(q, pool)[0][0].astype(np.int64)


def measure(
    mat: np.ndarray, queries: np.ndarray, truth: list[set[int]], search: Searcher, pool: int
) -> dict[str, float]:
    for q in queries[:20]:
        search(q, pool)
    samples, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        start = time.perf_counter()
        got = rescored(mat, q, search(q, pool), TOP)
        samples.append(time.perf_counter() - start)
        hits += len(want & set(got.tolist()))
    return {
        "recall": hits / (TOP * len(queries)),
        "p50_ms": percentile(samples, 50) * 1000,
        "p95_ms": percentile(samples, 95) * 1000,
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def libraries(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=corpus.DEFAULT_SENTENCES)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000, help="held-out sentences")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument(
        "--candidates",
        default="usearch-f32,usearch-f16,usearch-i8,faiss-hnsw,faiss-ivf,hnswlib",
        help="comma-separated: usearch-f32, usearch-f16, usearch-i8, faiss-hnsw, faiss-ivf, "
        "hnswlib",
    )
    parser.add_argument("--m", default="16,32", help="HNSW connectivity values to try")
    parser.add_argument("--ef-add", type=int, default=128)
    parser.add_argument("--ef", default="16,32,64,128", help="search breadth (IVF: nprobe)")
    parser.add_argument("--pool", type=int, default=40, help="candidates rescored exactly")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/ann_bench.json"))
    args = parser.parse_args(argv)

    docs, mat_all, _, qmat = corpus.load(args.sentences)
    if len(docs) < args.items + args.queries:
        raise SystemExit(f"corpus has {len(docs):,} sentences: fewer than --items + --queries")
    mat = np.ascontiguousarray(mat_all[: args.items])
    query_sets = {
        "held-out sentences": mat_all[args.items : args.items + args.queries],
        "LoCoMo questions": qmat,
    }
    truth = {
        name: [set(exact_top(mat, q, TOP).tolist()) for q in qs] for name, qs in query_sets.items()
    }
    print(f"# {os.cpu_count()} cores, {platform.platform()}, numpy {np.__version__}")
    print(
        f"# {len(mat):,} items x {mat.shape[1]}, pool {args.pool}, build threads "
        f"{args.build_threads}"
    )
    print(
        "| index | params | build s | extra MB | queries | recall@10 | p50 ms | p95 ms | "
        "p95 vs exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    exact_p95: dict[str, float] = {}
    for name, qs in query_sets.items():
        res = measure(mat, qs, truth[name], lambda q, k: exact_top(mat, q, TOP), TOP)
        exact_p95[name] = res["p95_ms"]
        rows.append({"index": "exact numpy", "queries": name, **res})
        print(
            f"| exact numpy (peer) | - | 0 | 0 | {name} | {res['recall']:.3f} | "
            f"{res['p50_ms']:.2f} | {res['p95_ms']:.2f} | 1.00x |",
            flush=True,
        )

    builds: list[tuple[str, str, str, Callable[[], Any]]] = []
    for cand in args.candidates.split(","):
        for m in (int(x) for x in args.m.split(",")):
            t = args.build_threads
            if cand.startswith("usearch-"):
                dt = cand.split("-")[1]
                builds.append(
                    (
                        cand,
                        "usearch",
                        f"M={m} efC={args.ef_add}",
                        lambda dt=dt, m=m, t=t: build_usearch(mat, dt, m, args.ef_add, t),
                    )
                )
            elif cand == "faiss-hnsw":
                builds.append(
                    (
                        cand,
                        cand,
                        f"M={m} efC={args.ef_add}",
                        lambda m=m, t=t: build_faiss_hnsw(mat, m, args.ef_add, t),
                    )
                )
            elif cand == "hnswlib":
                builds.append(
                    (
                        cand,
                        cand,
                        f"M={m} efC={args.ef_add}",
                        lambda m=m, t=t: build_hnswlib(mat, m, args.ef_add, t),
                    )
                )
        if cand == "faiss-ivf":
            nlist = int(4 * np.sqrt(len(mat)))
            builds.append(
                (
                    cand,
                    cand,
                    f"nlist={nlist}",
                    lambda nlist=nlist, t=args.build_threads: build_faiss_ivf(mat, nlist, t),
                )
            )
    for label, kind, params, build in builds:
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        index = build()
        built = time.perf_counter() - start
        extra = rss_mb() - before
        efs = [int(x) for x in args.ef.split(",")]
        if kind == "faiss-ivf":
            efs = [e // 2 for e in efs] + [efs[-1]]
        for ef in efs:
            search = candidates(kind, index, ef, args.pool)
            for name, qs in query_sets.items():
                res = measure(mat, qs, truth[name], search, args.pool)
                ratio = res["p95_ms"] / exact_p95[name]
                rows.append(
                    {
                        "index": label,
                        "params": f"{params} ef={ef}",
                        "build_s": built,
                        "extra_mb": extra,
                        "queries": name,
                        **res,
                    }
                )
                knob = "nprobe" if kind == "faiss-ivf" else "ef"
                print(
                    f"| {label} | {params} {knob}={ef} | {built:.1f} | {extra:.0f} | {name} | "
                    f"{res['recall']:.3f} | {res['p50_ms']:.2f} | {res['p95_ms']:.2f} | "
                    f"{ratio:.2f}x |",
                    flush=True,
                )
        del index
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


class Lookup(Embeddings):
    """Precomputed vectors by text: the store is measured, not the model."""

    def __init__(self, texts: list[str], mat: np.ndarray) -> None:
        self.rows = {t: i for i, t in enumerate(texts)}
        self.mat = mat

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.mat[[self.rows[t] for t in texts]].tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.mat[self.rows[text]].tolist()  # type: ignore[no-any-return]


def store(argv: list[str]) -> None:
    from langgraph.store.base import PutOp

    from memshelf.stores import _query as q
    from memshelf.stores.ann import AnnConfig
    from memshelf.stores.sqlite import SqliteStore

    parser = argparse.ArgumentParser(description="store search, index on and off")
    parser.add_argument("--sentences", type=int, default=corpus.DEFAULT_SENTENCES)
    parser.add_argument("--sizes", default="5000,10000,20000,50000,100000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--keyword-weight", type=float, default=None)
    parser.add_argument(
        "--ab-keywords",
        action="store_true",
        help="also time the index store with schema 4's keyword search, interleaved",
    )
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/ann_store.json"))
    args = parser.parse_args(argv)
    docs, mat, _, _ = corpus.load(args.sentences)
    queries = docs[-args.queries :]
    embed = Lookup(docs, mat)
    index: Any = {"embed": embed, "dims": mat.shape[1], "fields": ["text"]}
    extra: dict[str, Any] = {}
    if args.keyword_weight is not None:
        extra["keyword_weight"] = args.keyword_weight
    tmp = Path(tempfile.mkdtemp(prefix="memshelf-ann-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # 100k items: ~250 MB
    ns = ("memories", "bench")
    print(f"# {os.cpu_count()} cores, {platform.platform()}, numpy {np.__version__}")
    print(f"# defaults: {AnnConfig()}")
    print(
        "| items | store | search p50 ms | search p95 ms | recall@10 vs exact | "
        "index build s | p95 vs exact |"
    )
    print("|---|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for size in (int(x) for x in args.sizes.split(",")):
        if size + args.queries > len(docs):
            raise SystemExit(f"corpus has {len(docs):,} sentences: too few for {size:,} items")
        path = tmp / f"s{size}.db"
        exact = SqliteStore(path, index=index, ann=AnnConfig(min_rows=None), **extra)
        for base in range(0, size, 2000):
            exact.batch(
                [PutOp(ns, f"d{i}", {"text": docs[i]}) for i in range(base, min(size, base + 2000))]
            )
        approx = SqliteStore(path, index=index, ann=AnnConfig(min_rows=1), **extra)
        start = time.perf_counter()
        approx.search(ns, query=queries[0], limit=10)
        block = approx._block(q.encode_ns(ns))
        block.wait_for_index()
        built = time.perf_counter() - start
        assert block.indexed(approx.ann)
        stores = {"exact": exact, "index": approx}
        modes: dict[str, Callable[[], AbstractContextManager[None]]] = {
            "exact": nullcontext,
            "index": nullcontext,
        }
        if args.ab_keywords:
            stores["index, schema 4 keywords"] = approx
            modes["index, schema 4 keywords"] = schema_4_keywords
        for text in queries[:20]:
            for st in stores.values():
                st.search(ns, query=text, limit=10)
        samples: dict[str, list[float]] = {name: [] for name in stores}
        keys: dict[str, list[list[str]]] = {name: [] for name in stores}
        for i, text in enumerate(queries):  # interleaved, so all see the same cache state
            for name in list(stores)[:: 1 if i % 2 else -1]:
                with modes[name]():
                    t0 = time.perf_counter()
                    hits = stores[name].search(ns, query=text, limit=10)
                    samples[name].append(time.perf_counter() - t0)
                keys[name].append([h.key for h in hits])
        p95_exact = percentile(samples["exact"], 95) * 1000
        for name in stores:
            p50, p95 = percentile(samples[name], 50) * 1000, percentile(samples[name], 95) * 1000
            same = sum(len(set(a) & set(b)) for a, b in zip(keys[name], keys["exact"], strict=True))
            recall = same / max(1, sum(len(b) for b in keys["exact"]))
            build = built if name == "index" else None
            row = {
                "items": size,
                "store": name,
                "p50_ms": p50,
                "p95_ms": p95,
                "recall_at_10": recall,
                "build_s": build,
            }
            rows.append(row)
            print(
                f"| {size:,} | {name} | {p50:.2f} | {p95:.2f} | {recall:.3f} | "
                f"{'-' if build is None else f'{build:.1f}'} | {p95 / p95_exact:.2f}x |",
                flush=True,
            )
        exact.close()
        approx.close()
        path.unlink()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("libraries", "store"):
        raise SystemExit("usage: ann_bench.py {libraries,store} [options] (see --help of each)")
    (libraries if sys.argv[1] == "libraries" else store)(sys.argv[2:])


if __name__ == "__main__":
    main()
