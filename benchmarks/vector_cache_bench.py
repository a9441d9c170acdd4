"""Memory the SQLite store's vector cache keeps for namespaces that were emptied.

    python benchmarks/vector_cache_bench.py --compare 8e13fd3 --namespaces 5000

Each run is a fresh process and file: ``--namespaces`` namespaces of ``--items``
items each (384-dimension vectors, as the local embedder gives), every namespace
searched once (so its vectors are cached), then every item deleted. It prints the
cached blocks' array bytes (and the process's resident memory growth) after the
searches and after the deletes, and the time one search of each namespace took.
``--compare REV`` runs the same case against the store code of git revision REV (a
temporary worktree) in the same run, so the before/after ratio comes from one noisy
machine at once.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIMS = 384


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _held_mb(store: object) -> float:
    """What the cached blocks' arrays hold (read the same way from old and new code)."""
    blocks = store._blocks.values()  # type: ignore[attr-defined]
    names = ("_mat", "_ids", "_alive", "_vids")
    return sum(getattr(b, a).nbytes for b in blocks for a in names) / 2**20


def _case(namespaces: int, items: int) -> dict[str, float]:
    from memshelf.embeddings import FakeEmbedder
    from memshelf.stores.sqlite import SqliteStore

    index = {"embed": FakeEmbedder(DIMS), "dims": DIMS, "fields": ["text"]}
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "cache.db", index=index)  # type: ignore[arg-type]
        for n in range(namespaces):
            for i in range(items):
                store.put(("memories", f"u{n}"), f"k{i}", {"text": f"fact {i} of user {n}"})
        gc.collect()
        base = _rss_mb()
        start = time.perf_counter()
        for n in range(namespaces):
            store.search(("memories", f"u{n}"), query="fact about the user")
        per_search_ms = (time.perf_counter() - start) * 1000.0 / namespaces
        gc.collect()
        searched, held = _rss_mb(), _held_mb(store)
        for n in range(namespaces):
            for i in range(items):
                store.delete(("memories", f"u{n}"), f"k{i}")
        gc.collect()
        emptied, left = _rss_mb(), _held_mb(store)
        store.close()
    return {
        "cached_mb": round(held, 1),
        "left_mb": round(left, 1),
        "rss_cached_mb": round(searched - base, 1),
        "rss_left_mb": round(emptied - base, 1),
        "search_ms": round(per_search_ms, 3),
    }


def _run(src: Path, namespaces: int, items: int) -> dict[str, float]:
    code = (
        f"import sys, json; sys.path[:0] = [{str(src)!r}, {str(ROOT)!r}]; "
        "from benchmarks.vector_cache_bench import _case; "
        f"print(json.dumps(_case({namespaces}, {items})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2)
    parser.add_argument("--compare", help="a git revision to measure in the same run")
    args = parser.parse_args()
    rows = [("this tree", _run(ROOT / "src", args.namespaces, args.items))]
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "old"
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
                rows.append((args.compare, _run(tree / "src", args.namespaces, args.items)))
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
                )
    print(
        "| code | cache after searching, MB (RSS growth) | after deleting every item, MB "
        "(RSS growth) | search ms |"
    )
    print("|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['cached_mb']} ({r['rss_cached_mb']}) | {r['left_mb']} "
            f"({r['rss_left_mb']}) | {r['search_ms']} |"
        )


if __name__ == "__main__":
    main()
