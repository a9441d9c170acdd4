"""list_namespaces over 10k users and 1%-selective filters over 100k items: SQL vs Python.

    python benchmarks/namespaces_bench.py --compare f3b49a0
    python benchmarks/namespaces_bench.py --backend redis --compare <rev>

Two workloads, each built fresh in its own file per store:

- namespaces: ``--users`` users, each with ("memories", user) holding 3 items and
  ("threads", user) holding 1, plus 100 ("team", t, "findings") namespaces; then
  list_namespaces with prefix, suffix, wildcard, max_depth, limit and offset.
- filters: ``--items`` items over 100 ("docs", u) namespaces, where ``kind`` is
  "rare" for 1% of them and ``n >= 990`` holds for another 1%; then filtered
  listings (and one filtered search with a query, memshelf only).

memshelf's SqliteStore (``--backend redis``: its RedisStore, on a throw-away
local Redis 8 started by this script, each workload under its own key prefix)
from this tree runs against the same store code at git revision ``--compare``
(the peer: it filtered and listed namespaces in Python over every row), in the
same run, each in a subprocess; langgraph's
InMemoryStore and SqliteStore run the same calls as outside references. Each
call repeats ``--runs`` times (fewer when a call would pass ``--budget``
seconds) and is reported as p50 / p95 ms. Every store's answer is checked
against memshelf's, so a faster answer is also the same answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "namespaces.json"
WORDS = "tea coffee deploy fly cello orchestra school postgres zed recipe peanut lake".split()
USER = "user-{:05d}"

NS_CASES: list[tuple[str, dict[str, Any]]] = [
    ("first page, no condition", {}),
    ("users: prefix (memories,), max_depth 2", {"prefix": ("memories",), "max_depth": 2}),
    (
        "users, deep page: offset 9000",
        {"prefix": ("memories",), "max_depth": 2, "offset": 9000},
    ),
    ("all users: prefix (memories,), limit 20k", {"prefix": ("memories",), "limit": 20_000}),
    ("top level: max_depth 1", {"max_depth": 1}),
    ("suffix (findings,)", {"suffix": ("findings",)}),
    ("one user: prefix (memories, user-04242)", {"prefix": ("memories", USER.format(4242))}),
    ("wildcard: prefix (*, user-04242)", {"prefix": ("*", USER.format(4242))}),
    ("everything: limit 100k", {"limit": 100_000}),
]
RARE = {"kind": "rare"}
F_CASES: list[tuple[str, dict[str, Any]]] = [
    ("kind=rare (1%), prefix (docs,)", {"filter": RARE}),
    ("n >= 990 (1%)", {"filter": {"n": {"$gte": 990}}}),
    ("kind=rare and meta.src=web (0.5%)", {"filter": {**RARE, "meta": {"src": "web"}}}),
    ("kind=rare, one namespace of 1,000", {"filter": RARE, "prefix": ("docs", "u042")}),
    ("kind=rare, offset 500", {"filter": RARE, "offset": 500}),
    ("no match: kind=absent", {"filter": {"kind": "absent"}}),
    ("query 'tea lake' + kind=rare", {"filter": RARE, "query": "tea lake"}),
]


def namespace_items(users: int) -> Iterator[tuple[tuple[str, ...], str, dict[str, Any]]]:
    for u in range(users):
        user = USER.format(u)
        for k in range(3):
            yield ("memories", user), f"m{k}", {"text": f"fact {k} of {user}", "kind": "fact"}
        yield ("threads", user), "t0", {"title": f"chat of {user}"}
    for t in range(100):
        for k in range(2):
            yield ("team", f"t{t:03d}", "findings"), f"f{k}", {"claim": f"claim {k}"}


def filter_items(n: int) -> Iterator[tuple[tuple[str, ...], str, dict[str, Any]]]:
    for i in range(n):
        words = " ".join(WORDS[(i * p) % len(WORDS)] for p in (1, 5, 7))
        yield (
            ("docs", f"u{i % 100:03d}"),
            f"d{i:06d}",
            {
                "text": f"{words} note {i}",
                "kind": "rare" if (i // 100) % 100 == 7 else "common",
                "n": (i * 7919) % 1000,
                "meta": {"src": "web" if i % 2 else "chat"},
            },
        )


def _fill(store: Any, rows: Iterator[tuple[tuple[str, ...], str, dict[str, Any]]]) -> float:
    """Put every row in batches of 1,000; returns items per second."""
    from langgraph.store.base import PutOp

    count, start, batch = 0, time.perf_counter(), []
    for ns, key, value in rows:
        batch.append(PutOp(ns, key, value))
        if len(batch) == 1000:
            store.batch(batch)
            count, batch = count + len(batch), []
    if batch:
        store.batch(batch)
        count += len(batch)
    return count / (time.perf_counter() - start)


class _Cap:
    """Stops a SQLite store's call after ``seconds`` (its connection's progress handler)."""

    def __init__(self, conn: Any, seconds: float) -> None:
        self.seconds, self.deadline = seconds, float("inf")
        conn.set_progress_handler(lambda: time.perf_counter() > self.deadline, 10_000)

    def __call__(self, call: Callable[[], Any]) -> Callable[[], Any]:
        def capped() -> Any:
            self.deadline = time.perf_counter() + self.seconds
            try:
                return call()
            finally:
                self.deadline = float("inf")

        return capped


def _timed(call: Callable[[], Any], runs: int, budget: float, cap: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = call()  # warm-up, and the answer that is checked
    except sqlite3.OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        return {"stopped_after_s": cap}
    first = time.perf_counter() - start
    if first > budget:  # one slow call says enough
        return {"p50_ms": first * 1000, "p95_ms": first * 1000, "runs": 1, "result": result}
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < runs and (len(times) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        try:
            call()
        except sqlite3.OperationalError as exc:  # a repeat passed the cap: keep the others
            if "interrupt" not in str(exc):
                raise
            times = times or [first]
            break
        times.append(time.perf_counter() - start)
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000,
        "runs": len(times),
        "result": result,
    }


def _ns_call(store: Any, kw: dict[str, Any]) -> Callable[[], Any]:
    return lambda: [list(ns) for ns in store.list_namespaces(**kw)]


def _search_call(store: Any, kw: dict[str, Any]) -> Callable[[], Any]:
    kw = dict(kw)
    prefix = kw.pop("prefix", ("docs",))
    return lambda: [h.key for h in store.search(prefix, limit=10, **kw)]


def _run_cases(
    store: Any,
    cases: list[tuple[str, dict[str, Any]]],
    make: Callable[..., Any],
    args: Any,
    conn: Any = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cap = _Cap(conn, args.cap) if conn is not None else (lambda call: call)
    for name, kw in cases:
        try:
            out[name] = _timed(cap(make(store, kw)), args.runs, args.budget, args.cap)
        except Exception as exc:  # a peer that cannot run a case says so in the table
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:80]}"}
    return out


def _fake_index() -> dict[str, Any]:
    from memshelf.embeddings import FakeEmbedder

    embedder = FakeEmbedder(64)
    embedder._word_vector = lru_cache(maxsize=None)(embedder._word_vector)  # type: ignore[method-assign]
    return {"embed": embedder, "dims": 64, "fields": ["text"]}


def redis_worker(args: argparse.Namespace) -> dict[str, Any]:
    """memshelf's RedisStore (whichever memshelf is importable) on both workloads."""
    from memshelf.stores.redis import RedisStore, connect, drop_prefix

    report: dict[str, Any] = {}
    prefix = f"bench{os.getpid()}"
    try:
        store = RedisStore(args.redis_url, prefix=f"{prefix}-ns")
        report["ns_puts_per_s"] = _fill(store, namespace_items(args.users))
        report["ns"] = _run_cases(store, NS_CASES, _ns_call, args)
        store.close()
        store = RedisStore(args.redis_url, index=_fake_index(), prefix=f"{prefix}-f")  # type: ignore[arg-type]
        report["f_puts_per_s"] = _fill(store, filter_items(args.items))
        report["f"] = _run_cases(store, F_CASES, _search_call, args)
        store.close()
    finally:
        client = connect(args.redis_url)
        for name in ("ns", "f"):
            drop_prefix(client, f"{prefix}-{name}")
        client.close()
    return report


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """memshelf's SqliteStore (whichever memshelf is importable) on both workloads."""
    from memshelf.stores.sqlite import SqliteStore

    if args.backend == "redis":
        return redis_worker(args)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "ns.db")
        report["ns_puts_per_s"] = _fill(store, namespace_items(args.users))
        report["ns"] = _run_cases(store, NS_CASES, _ns_call, args, store._conn)
        store.close()
        store = SqliteStore(Path(tmp) / "f.db", index=_fake_index())  # type: ignore[arg-type]
        report["f_puts_per_s"] = _fill(store, filter_items(args.items))
        report["f"] = _run_cases(store, F_CASES, _search_call, args, store._conn)
        store.close()
    return report


def peers(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """langgraph's own stores on the same workloads (no index: listings only)."""
    from langgraph.store.memory import InMemoryStore
    from langgraph.store.sqlite import SqliteStore as LangGraphSqlite

    found: dict[str, dict[str, Any]] = {}
    listings = [c for c in F_CASES if "query" not in c[1]]
    mem: dict[str, Any] = {}
    store: Any = InMemoryStore()
    mem["ns_puts_per_s"] = _fill(store, namespace_items(args.users))
    mem["ns"] = _run_cases(store, NS_CASES, _ns_call, args)
    store = InMemoryStore()
    mem["f_puts_per_s"] = _fill(store, filter_items(args.items))
    mem["f"] = _run_cases(store, listings, _search_call, args)
    found["langgraph InMemoryStore"] = mem
    lite: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload, rows, cases, make in (
            ("ns", namespace_items(args.users), NS_CASES, _ns_call),
            ("f", filter_items(args.items), listings, _search_call),
        ):
            with LangGraphSqlite.from_conn_string(str(Path(tmp) / f"{workload}.db")) as store:
                store.setup()
                lite[f"{workload}_puts_per_s"] = _fill(store, rows)
                lite[workload] = _run_cases(store, cases, make, args, store.conn)
    found["langgraph SqliteStore"] = lite
    return found


def _subprocess(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", "--users", str(args.users)]
    cmd += ["--items", str(args.items), "--runs", str(args.runs), "--budget", str(args.budget)]
    cmd += ["--cap", str(args.cap), "--backend", args.backend]
    cmd += ["--redis-url", args.redis_url] if args.redis_url else []
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def _check(name: str, case: str, got: dict[str, Any], ours: dict[str, Any], kw: Any) -> str:
    """How a store's answer compares with memshelf's (this tree)."""
    if "error" in got:
        return str(got["error"])
    if "result" not in got:
        return f"stopped after {got['stopped_after_s']:g} s"
    if got["result"] == ours["result"]:
        return "same"
    if isinstance(kw.get("filter"), dict) and len(got["result"]) == len(ours["result"]):
        return "same count (order differs)"  # langgraph lists by insertion or key order
    if sorted(got["result"]) == sorted(ours["result"]):
        return "same set, other order"
    return f"DIFFERENT ({len(got['result'])} vs {len(ours['result'])})"


def _cell(case: dict[str, Any] | None) -> str:
    if not case or "error" in case:
        return "—"
    if "stopped_after_s" in case:
        return f"> {case['stopped_after_s'] * 1000:,.0f}"
    runs = "" if case["runs"] > 1 else " (1 run)"
    return f"{case['p50_ms']:,.2f} / {case['p95_ms']:,.2f}{runs}"


def table(reports: dict[str, dict[str, Any]], rev: str | None) -> str:
    names = list(reports)
    ours = reports["memshelf"]
    head = "| case | " + " | ".join(f"{n} p50 / p95 ms" for n in names)
    head += (f" | {rev} / memshelf (p50)" if rev else "") + " | answers |\n"
    head += "|---" * (len(names) + (3 if rev else 2)) + "|\n"
    lines = []
    for workload, cases in (("ns", NS_CASES), ("f", F_CASES)):
        for case, kw in cases:
            mine = ours[workload][case]
            row = [_cell(reports[n][workload].get(case)) for n in names]
            if rev:
                peer = reports[f"memshelf @{rev}"][workload][case]
                slow = peer.get("p50_ms", peer.get("stopped_after_s", 0) * 1000)
                ratio = f"{slow / mine['p50_ms']:,.1f}x" if slow else "—"
                row.append(f"**{'> ' if 'stopped_after_s' in peer else ''}{ratio}**")
            checks = [
                f"{n}: {_check(n, case, reports[n][workload][case], mine, kw)}"
                for n in names[1:]
                if case in reports[n][workload]
            ]
            prefix = "list_namespaces" if workload == "ns" else "search"
            lines.append(f"| {prefix}: {case} | " + " | ".join(row) + f" | {'; '.join(checks)} |")
    puts = "| put items/s (namespaces / filters workload) | " + " | ".join(
        f"{reports[n]['ns_puts_per_s']:,.0f} / {reports[n]['f_puts_per_s']:,.0f}" for n in names
    )
    puts += (" | —" if rev else "") + " | — |"
    return head + "\n".join(lines) + "\n" + puts + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per case at most")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds one call may take")
    parser.add_argument("--compare", help="git revision whose store code is the peer")
    parser.add_argument("--peers", choices=["all", "none"], default="all")
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    with contextlib.ExitStack() as stack:
        if args.backend == "redis" and not args.redis_url:
            from memshelf.testing import redis_server

            args.redis_url = stack.enter_context(redis_server())
        reports = _measure(args)
    print(f"backend={args.backend} users={args.users} items={args.items}", end=" ")
    print(f"runs<={args.runs} budget={args.budget}s\n")
    print(table(reports, args.compare))
    out = OUT if args.backend == "sqlite" else OUT.with_name(f"namespaces_{args.backend}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for report in reports.values():
        for workload in ("ns", "f"):
            for case in report[workload].values():
                case.pop("result", None)
    args.redis_url = None
    out.write_text(json.dumps({"args": vars(args), "reports": reports}, indent=2))


def _measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    reports: dict[str, dict[str, Any]] = {"memshelf": _subprocess(ROOT / "src", args)}
    if args.compare:
        tree = Path(tempfile.mkdtemp(prefix="memshelf-peer-"))
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.compare],
            check=True,
        )
        try:
            reports[f"memshelf @{args.compare}"] = _subprocess(tree / "src", args)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
    if args.peers == "all":
        reports.update(peers(args))
    return reports


if __name__ == "__main__":
    main()
