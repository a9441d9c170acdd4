"""What the MCP layer costs: one search made four ways on the same store.

    python benchmarks/mcp_bench.py --memories 200 --calls 200
    python benchmarks/mcp_bench.py --embeddings fake      # transport cost only

A real service (uvicorn on 127.0.0.1, in this process, SQLite in a temporary data dir,
the deterministic chat model, the real local embedder unless ``--embeddings fake``)
holds ``--memories`` facts of one user. Each way runs ``--calls`` searches (k=5),
round-robin with the others, after five warm-up rounds: ``ops.search_memories``
in-process; the MCP tool through the SDK's in-process client; ``POST
/v1/memories/search`` over HTTP (httpx, keep-alive); the MCP tool over streamable HTTP
at ``/mcp`` (the SDK's client, one session). Medians and p95 in ms, and each as a ratio
to the ``/v1`` route measured in the same run; the load average is printed, since the
machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from memshelf.config import Settings
from memshelf.mcp import LocalAccess, build_server
from memshelf.ops import memories as ops
from memshelf.ops.keys import KeyRing
from memshelf.service import create_app
from memshelf.stores import open_store

TOPICS = ["tea", "bicycles", "Lisbon", "cello", "peanuts", "Python", "hiking", "chess"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


async def _measure(settings: Settings, url: str, token: str, calls: int) -> dict[str, list[float]]:
    """Round-robin: each round times one search of every way, so load that comes and
    goes on a shared machine falls on all of them alike; every query is new (no
    embedding cache helps)."""
    headers = {"Authorization": f"Bearer {token}"}
    with open_store(settings=settings) as store:
        async with (
            Client(build_server(LocalAccess(store, "u")), cache=None) as local,
            httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
            httpx2.AsyncClient(headers=headers, timeout=60) as http2,
            Client(streamable_http_client(f"{url}/mcp", http_client=http2), cache=None) as remote,
        ):

            async def direct(q: str) -> object:
                return await anyio.to_thread.run_sync(
                    lambda: ops.search_memories(store, "u", q, k=5)
                )

            ways: dict[str, Callable[[str], Awaitable[object]]] = {
                "ops in-process": direct,
                "MCP in-process": lambda q: local.call_tool("search_memories", {"query": q}),
                "POST /v1/memories/search": lambda q: http.post(
                    "/v1/memories/search", json={"query": q, "k": 5}
                ),
                "MCP over HTTP /mcp": lambda q: remote.call_tool("search_memories", {"query": q}),
            }
            results: dict[str, list[float]] = {way: [] for way in ways}
            for n in range(-5, calls):  # five warm-up rounds
                for i, (way, once) in enumerate(ways.items()):
                    query = f"way {i}: what about {TOPICS[n % len(TOPICS)]} number {n}?"
                    started = time.perf_counter()
                    await once(query)
                    if n >= 0:
                        results[way].append(time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--embeddings", default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            chat_model="fake",
            embeddings=args.embeddings,
            rate_limit_per_minute=0,
        )
        with open_store(settings=settings) as store:
            token = KeyRing(store).create("u")[1]
            for n in range(args.memories):
                store.put(
                    ("memories", "u"),
                    f"m{n}",
                    {"text": f"Fact {n}: likes {TOPICS[n % len(TOPICS)]} variant {n // 8}"},
                )
        port = _port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            results = anyio.run(_measure, settings, f"http://127.0.0.1:{port}", token, args.calls)
        finally:
            server.should_exit = True
            thread.join(30)
    base = statistics.median(results["POST /v1/memories/search"])
    print(
        f"load average {os.getloadavg()}, {os.cpu_count()} cores; {args.memories} memories, "
        f"{args.calls} searches each, embeddings={args.embeddings}"
    )
    print(f"{'way':<28} {'median ms':>10} {'p95 ms':>8} {'/v1 ratio':>10}")
    for way, samples in results.items():
        median, p95 = _stats(samples)
        print(f"{way:<28} {median:>10.2f} {p95:>8.2f} {statistics.median(samples) / base:>10.2f}")


if __name__ == "__main__":
    main()
