"""Store benchmark: memshelf's stores vs LangGraph's InMemoryStore, SqliteStore and RedisStore.

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
both ``fields`` and ``text_fields`` are passed. The Redis backends share one
server: ``--redis-url`` or, by default, a throw-away Redis 8 started by
:func:`memshelf.testing.redis_server`. ``--concurrent 8`` adds the
many-clients run: N processes searching, getting and putting for S seconds.
"""

from __future__ import annotations

import argparse
import contextlib
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
    size_of: Callable[[], int] | None,
) -> dict[str, Any]:
    gc.collect()
    namespaces = [("bench", f"ns{k}") for k in range(n_ns)]
    store = make(vecs)
    try:
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
        misses = sum(store.get(target, f"k{k}") is None for k in keys[:100])
        size = size_of() if size_of is not None else None
    finally:
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
        "get_misses_of_100": misses,
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


def file_size(path: Path) -> Callable[[], int]:
    return lambda: sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def redis_memory(url: str) -> Callable[[], int]:
    """Bytes the server uses now: run each Redis backend on an emptied server."""
    from memshelf.stores.redis import connect

    def used() -> int:
        client = connect(url)
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    return used


def make_memshelf_redis(url: str, keyword_weight: float) -> Callable[[Vectors], BaseStore]:
    from memshelf.stores.redis import RedisStore

    def make(vecs: Vectors) -> BaseStore:
        return RedisStore(
            url,
            index={"embed": vecs.embed, "dims": DIMS, "fields": ["text"]},
            keyword_weight=keyword_weight,
            prefix="bench",
        )

    return make


def make_langgraph_redis(url: str) -> Callable[[Vectors], BaseStore]:
    def make(vecs: Vectors) -> BaseStore:
        import redis
        from langgraph.store.redis import RedisStore as LGRedisStore

        index: Any = {"embed": vecs.embed, "dims": DIMS, "fields": ["text"]}
        conn = redis.Redis.from_url(url)
        store = LGRedisStore(conn, index=index)
        store.setup()
        store.close = conn.close  # type: ignore[attr-defined]
        return store

    return make


def _minus(measure: Callable[[], int], base: int) -> Callable[[], int]:
    return lambda: measure() - base


def flush(url: str) -> None:
    """Empty the benchmark server between Redis backends (it is ours, started for this run)."""
    from memshelf.stores.redis import connect

    client = connect(url)
    client.flushall()
    client.close()


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
        "| recall@10 | get p50 / p95 ms | gets found | bytes/item | search p95 vs memshelf |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["search_p95_ms"] / base["search_p95_ms"]
        size = f"{r['bytes_per_item']:,.0f}" if r["bytes_per_item"] else "-"
        lines.append(
            f"| {r['backend']} | {r['items']:,} ({r['items_in_searched_namespace']:,}) "
            f"| {r['put_items_per_s']:,.0f} | {r['search_p50_ms']:.2f} / {r['search_p95_ms']:.2f} "
            f"| {r['first_search_ms']:.1f} | {r['recall_at_10']:.3f} "
            f"| {r['get_p50_ms']:.3f} / {r['get_p95_ms']:.3f} | {100 - r['get_misses_of_100']}% "
            f"| {size} | {ratio:.1f}x |"
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
    redis_url: str | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """One row per (item count, backend); the first backend is the base of the ratios."""
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    with contextlib.ExitStack() as stack:
        if redis_url is None and any(b in ("redis", "langgraph-redis") for b in backends):
            from memshelf.testing import redis_server

            redis_url = stack.enter_context(redis_server())
        return _run_all(
            item_counts, backends, namespaces, searches, gets, peer_searches, keyword_weight,
            redis_url, log,
        )  # fmt: skip


def _run_all(
    item_counts: list[int],
    backends: list[str],
    namespaces: int,
    searches: int,
    gets: int,
    peer_searches: int,
    keyword_weight: float,
    redis_url: str | None,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in item_counts:
        with tempfile.TemporaryDirectory(prefix="memshelf-bench-") as tmp:
            rows += _run_size(
                n, Path(tmp), backends, namespaces, searches, gets, peer_searches,
                keyword_weight, redis_url, log,
            )  # fmt: skip
    return rows


def _run_size(
    n: int,
    tmp: Path,
    backends: list[str],
    namespaces: int,
    searches: int,
    gets: int,
    peer_searches: int,
    keyword_weight: float,
    redis_url: str | None,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Every backend at one item count; SQLite files go in ``tmp`` (the caller removes it)."""
    rows: list[dict[str, Any]] = []
    vecs = Vectors(n, max(searches, peer_searches))
    log(
        f"# {n:,} items over {namespaces:,} namespaces; {platform.platform()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for backend in backends:
        peer = backend.startswith("langgraph")
        count = peer_searches if peer else searches
        if backend in ("redis", "langgraph-redis"):
            assert redis_url is not None
            flush(redis_url)
            used = redis_memory(redis_url)
            base = used()
            make = (
                make_memshelf_redis(redis_url, keyword_weight)
                if backend == "redis"
                else make_langgraph_redis(redis_url)
            )
            name = "memshelf redis" if backend == "redis" else "langgraph RedisStore"
            row = run_backend(name, make, vecs, n, namespaces, count, gets, _minus(used, base))
            flush(redis_url)
        elif backend == "sqlite":
            path = tmp / "memshelf.db"
            make = make_memshelf(path, keyword_weight)
            row = run_backend(
                "memshelf sqlite", make, vecs, n, namespaces, count, gets, file_size(path)
            )
        elif backend == "langgraph-memory":
            row = run_backend(
                "langgraph InMemoryStore", make_inmemory, vecs, n, namespaces, count, gets, None
            )
        else:
            path = tmp / "langgraph.db"
            row = run_backend(
                "langgraph SqliteStore (sqlite-vec)",
                make_langgraph_sqlite(path),
                vecs,
                n,
                namespaces,
                count,
                gets,
                file_size(path),
            )
        rows.append(row)
        log(table(rows))
    return rows


def _client(args: tuple[str, str, int, int, int, float, int]) -> dict[str, Any]:
    """One concurrent client: 80% searches, 10% gets, 10% puts until the deadline."""
    backend, where, n, n_ns, n_queries, deadline, seed = args
    vecs = Vectors(n, n_queries)
    store = (
        make_memshelf_redis(where, 0.3)(vecs)
        if backend == "redis"
        else make_memshelf(Path(where), 0.3)(vecs)
    )
    try:
        rng = np.random.default_rng(seed)
        lat: dict[str, list[float]] = {"search": [], "get": [], "put": []}
        errors = 0
        while time.time() < deadline:
            kind = rng.choice(["search"] * 8 + ["get", "put"])
            i = int(rng.integers(0, n))
            ns = ("bench", f"ns{i % n_ns}")
            start = time.perf_counter()
            try:
                if kind == "search":
                    store.search(
                        ns, query=vecs.query_text(int(rng.integers(0, n_queries))), limit=10
                    )
                elif kind == "get":
                    if store.get(ns, f"k{i}") is None:
                        errors += 1
                else:
                    store.put(ns, f"k{i}", {"text": vecs.doc_text(i), "i": i})
            except Exception:  # counted, not hidden: the run reports errors
                errors += 1
                continue
            lat[kind].append(time.perf_counter() - start)
    finally:
        store.close()  # type: ignore[attr-defined]
    return {"lat": lat, "errors": errors}


def _run_clients(
    backend: str, where: str, n: int, n_ns: int, clients: int, seconds: float
) -> list[dict[str, Any]]:
    """Load ``n`` items at ``where``, then ``clients`` processes work on them for ``seconds``."""
    import multiprocessing

    if backend == "redis":
        flush(where)
    vecs = Vectors(n, 1000)
    store = (
        make_memshelf_redis(where, 0.3)(vecs)
        if backend == "redis"
        else make_memshelf(Path(where), 0.3)(vecs)
    )
    try:
        load(store, vecs, [("bench", f"ns{k}") for k in range(n_ns)], n)
    finally:
        store.close()  # type: ignore[attr-defined]
    deadline = time.time() + 5.0 + seconds  # workers build their vectors in the first seconds
    jobs = [(backend, where, n, n_ns, 1000, deadline, k) for k in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        return pool.map(_client, jobs)


def run_concurrent(
    backend: str,
    n: int,
    n_ns: int,
    clients: int,
    seconds: float,
    *,
    redis_url: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``clients`` processes on one loaded store for ``seconds``: throughput, p50/p99, errors."""
    with contextlib.ExitStack() as stack:
        if backend == "redis":
            where = redis_url
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="memshelf-conc-"))
            where = str(Path(tmp) / "memshelf.db")
        if where is None:
            raise ValueError("the concurrent redis run needs redis_url")
        results = _run_clients(backend, where, n, n_ns, clients, seconds)
    lat = {k: [x for r in results for x in r["lat"][k]] for k in ("search", "get", "put")}
    ops = sum(len(v) for v in lat.values())
    row = {
        "backend": f"memshelf {backend}",
        "clients": clients,
        "seconds": seconds,
        "items": n,
        "namespaces": n_ns,
        "ops": ops,
        "ops_per_s": ops / seconds,
        "errors": sum(r["errors"] for r in results),
        **{f"{k}_p50_ms": pct(v, 50) for k, v in lat.items() if v},
        **{f"{k}_p99_ms": pct(v, 99) for k, v in lat.items() if v},
    }
    log(
        f"{row['backend']}: {clients} clients x {seconds:.0f} s, {ops:,} ops "
        f"({row['ops_per_s']:,.0f}/s), search p50/p99 {row.get('search_p50_ms', 0):.2f}/"
        f"{row.get('search_p99_ms', 0):.2f} ms, get p99 {row.get('get_p99_ms', 0):.2f} ms, "
        f"put p99 {row.get('put_p99_ms', 0):.2f} ms, errors {row['errors']}"
    )
    return row


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
    parser.add_argument("--redis-url", help="an existing Redis 8 / Stack (default: start one)")
    parser.add_argument("--concurrent", type=int, default=0, help="clients for the load run")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrent-items", default="100000:1000", help="ITEMS:NAMESPACES")
    parser.add_argument("--backends", default="sqlite", help="memshelf backends: sqlite,redis")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/store_bench.json"))
    args = parser.parse_args()
    counts, namespaces = [int(x) for x in args.items.split(",")], 1
    if args.spread:
        total, namespaces = (int(x) for x in args.spread.split(":"))
        counts = [total]
    peers = [] if args.peers == "none" else args.peers.split(",")
    ours = args.backends.split(",")
    with contextlib.ExitStack() as stack:
        url = args.redis_url
        if url is None and "redis" in ours + peers + ["redis"] * bool(args.concurrent):
            from memshelf.testing import redis_server

            url = stack.enter_context(redis_server())
        rows = run_bench(
            counts,
            [*ours, *peers],
            namespaces=namespaces,
            searches=args.searches,
            gets=args.gets,
            peer_searches=args.peer_searches,
            keyword_weight=args.keyword_weight,
            redis_url=url,
        ) if args.searches else []  # fmt: skip
        if args.concurrent:
            total, spread = (int(x) for x in args.concurrent_items.split(":"))
            for backend in ours:
                rows.append(
                    run_concurrent(
                        backend, total, spread, args.concurrent, args.seconds, redis_url=url
                    )
                )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"\nJSON: {args.json}")
