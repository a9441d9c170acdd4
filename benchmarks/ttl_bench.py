"""Read throughput of the SQLite store with TTL refresh-on-read on and off.

    python benchmarks/ttl_bench.py --compare f3b49a0

Each case opens a fresh store file with ``--items`` items (a 60-minute TTL, last
refreshed ten minutes ago, when TTL
is on), then times ``get`` of random keys and ``search`` with short queries: alone,
and while another process keeps writing to the same file. ``--compare REV`` runs the
same cases, in the same run, against the store code of git revision REV (checked out
to a temporary worktree), so before/after ratios come from one noisy machine at once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = "tea coffee deploy fly cello orchestra school postgres zed recipe peanut lake".split()


def _writer(path: str, stop_file: str) -> None:
    from memshelf.embeddings import FakeEmbedder
    from memshelf.stores.sqlite import SqliteStore

    store = SqliteStore(
        path,
        index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]},
        verify_embedder=False,
    )
    n = 0
    while not os.path.exists(stop_file):
        store.put(("w",), f"w{n % 200}", {"text": f"writer note {n}"})
        n += 1
    store.close()


def _case(items: int, reads: int, ttl_on: bool, contended: bool) -> dict[str, float]:
    from memshelf.embeddings import FakeEmbedder
    from memshelf.stores.sqlite import SqliteStore

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ttl.db")
        ttl = {"default_ttl": 60.0, "refresh_on_read": True} if ttl_on else None
        index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
        store = SqliteStore(path, index=index, ttl=ttl)  # type: ignore[arg-type]
        ns = ("memories", "u")
        for start in range(0, items, 500):
            from langgraph.store.base import PutOp

            store.batch(
                [
                    PutOp(
                        ns,
                        f"k{i}",
                        {"text": " ".join(rng.sample(WORDS, 4)) + f" {i}"},
                        ttl=60.0 if ttl_on else None,
                    )
                    for i in range(start, min(items, start + 500))
                ]
            )
        # Last read ten minutes ago, as in steady use: every first read needs a refresh.
        store._conn.execute("UPDATE items SET expires_at = expires_at - 600")
        stop_file = str(Path(tmp) / "stop")
        writer = None
        if contended:
            writer = subprocess.Popen(
                [sys.executable, __file__, "--writer", path, stop_file],
                env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            )
            time.sleep(1.0)
        get_times, search_times = [], []
        t_all = time.perf_counter()
        for i in range(reads):
            t = time.perf_counter()
            store.get(ns, f"k{rng.randrange(items)}")
            get_times.append(time.perf_counter() - t)
            if i % 10 == 0:
                t = time.perf_counter()
                store.search(ns, query=" ".join(rng.sample(WORDS, 3)), limit=5)
                search_times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t_all
        if writer is not None:
            Path(stop_file).touch()
            writer.wait(timeout=30)
        store.close()

    def p(xs: list[float], q: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000

    return {
        "reads_per_s": (len(get_times) + len(search_times)) / elapsed,
        "get_p50_ms": statistics.median(get_times) * 1000,
        "get_p95_ms": p(get_times, 0.95),
        "get_max_ms": max(get_times) * 1000,
        "search_p50_ms": statistics.median(search_times) * 1000,
        "search_p95_ms": p(search_times, 0.95),
    }


def _run(src: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    """All cases, in a subprocess importing memshelf from ``src``."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--cases",
            "--items",
            str(args.items),
            "--reads",
            str(args.reads),
        ],
        env={**os.environ, "PYTHONPATH": str(src)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=3_000)
    parser.add_argument("--compare", help="a git revision to measure in the same run")
    parser.add_argument("--cases", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--writer", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        _writer(*args.writer)
        return
    if args.cases:
        rows = [
            {
                "ttl": ttl_on,
                "contended": contended,
                **_case(args.items, args.reads, ttl_on, contended),
            }
            for contended in (False, True)
            for ttl_on in (False, True)
        ]
        print(json.dumps(rows))
        return
    runs = {"this tree": _run(ROOT / "src", args)}
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "-q",
                    "--detach",
                    str(tree),
                    args.compare,
                ],
                check=True,
            )
            try:
                runs[args.compare] = _run(tree / "src", args)
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
                )
    print(f"{args.items} items, {args.reads} gets + {args.reads // 10} searches per case\n")
    print(
        "| code | TTL | other process writing | reads/s | get p50/p95/max ms | search p50/p95 ms |"
    )
    print("|---|---|---|---|---|---|")
    for name, rows in runs.items():
        for r in rows:
            print(
                f"| {name} | {'on' if r['ttl'] else 'off'} | {'yes' if r['contended'] else 'no'} "
                f"| {r['reads_per_s']:.0f} | {r['get_p50_ms']:.3f} / {r['get_p95_ms']:.3f} / "
                f"{r['get_max_ms']:.1f} | {r['search_p50_ms']:.2f} / {r['search_p95_ms']:.2f} |"
            )


if __name__ == "__main__":
    main()
