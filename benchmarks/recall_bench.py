"""Recall-node overhead: query embedding + store search + prompt assembly, per turn.

    python benchmarks/recall_bench.py --memories 1000,100000 --turns 1000

Memories are generated fact sentences embedded by the real local embedder
(the store does it on put); every turn's question is distinct, so no query
embedding is served from cache. The peer is the plain LangGraph approach:
InMemoryStore with the same embedder, searched the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from memshelf.agent.nodes import Nodes
from memshelf.embeddings import CachedDocuments, shared_local_embedder
from memshelf.eval.storebench import pct
from memshelf.llm.fake import rule_based_chat_model
from memshelf.namespaces import memories_namespace
from memshelf.stores.sqlite import SqliteStore

SUBJECTS = ["Sukhveer", "The user", "Their team", "Their manager", "Their sister"]
VERBS = ["deploys on", "prefers", "uses", "is learning", "dislikes", "plans to try", "works with"]
OBJECTS = [
    "Fly.io",
    "Kubernetes",
    "Rust",
    "Postgres 16",
    "answers with code",
    "short emails",
    "ramen",
    "Berlin",
    "TypeScript",
    "Redis",
    "long walks",
    "vim",
    "AWS Lambda",
    "jazz",
    "Grafana",
    "SQLite",
    "Go",
    "climbing",
    "espresso",
    "Terraform",
]
QUESTIONS = [
    "Where do I deploy {o}?",
    "What do I think about {o}?",
    "Do I use {o} at work?",
    "Remind me what I said about {o}",
    "Which database do we pick for {o}?",
]


def fact(rng: random.Random, i: int) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (note {i})."


def fill(store: BaseStore, user: str, n: int, rng: random.Random) -> float:
    ns = memories_namespace(user)
    start = time.perf_counter()
    for base in range(0, n, 1000):
        store.batch(
            [PutOp(ns, f"m{i}", {"text": fact(rng, i)}) for i in range(base, min(n, base + 1000))]
        )
    return time.perf_counter() - start


def measure(store: BaseStore, user: str, turns: int, rng: random.Random) -> dict[str, float]:
    nodes = Nodes(rule_based_chat_model(), [], recall_k=5, max_rounds=1)
    config: Any = {"configurable": {"user_id": user, "thread_id": "bench"}}
    samples = []
    for i in range(turns):
        question = rng.choice(QUESTIONS).format(o=rng.choice(OBJECTS)) + f" #{i}"
        state: Any = {"messages": [HumanMessage(question)]}
        start = time.perf_counter()
        update = nodes.recall(state, config, store=store)
        nodes.prompt({**state, **update})
        samples.append(time.perf_counter() - start)
    return {"p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95), "turns": turns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", default="1000,100000")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--peer-turns", type=int, default=50)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/recall_bench.json"))
    args = parser.parse_args()
    embedder = CachedDocuments(shared_local_embedder(), 384)
    index: Any = {"embed": embedder, "dims": 384, "fields": ["text"]}
    tmp = Path(tempfile.mkdtemp(prefix="memshelf-recall-"))
    print(f"# {os.cpu_count()} cores, {platform.platform()}, local all-MiniLM-L6-v2 (ONNX int8)")
    print("| memories | backend | fill s | recall p50 ms | recall p95 ms | turns |")
    print("|---|---|---|---|---|---|")
    rows = []
    for n in (int(x) for x in args.memories.split(",")):
        for name, store, turns in [
            ("memshelf sqlite", SqliteStore(tmp / f"r{n}.db", index=index), args.turns),
            ("langgraph InMemoryStore", InMemoryStore(index=index), args.peer_turns),
        ]:
            rng = random.Random(n)
            filled = fill(store, "sukhveer", n, rng)
            measure(store, "sukhveer", 3, rng)  # warm: model loaded, vectors cached
            result = measure(store, "sukhveer", turns, rng)
            rows.append({"memories": n, "backend": name, "fill_s": filled, **result})
            print(
                f"| {n:,} | {name} | {filled:.0f} | {result['p50_ms']:.1f} | "
                f"{result['p95_ms']:.1f} | {turns} |",
                flush=True,
            )
            if isinstance(store, SqliteStore):
                store.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
