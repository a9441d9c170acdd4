"""``memshelf demo``: the scripted memory walk-through on the embedded defaults.

Step 1 stores facts for two users; step 2 runs in a *new process*, so what it
finds came from the durable file, not this process's memory. It exits non-zero
when any check fails. (The agent's three-thread demo replaces this once the
agent exists.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, build_settings
from memshelf.namespaces import memories_namespace

FACTS = {
    "sukhveer": {
        "deploy": "Sukhveer deploys on Fly.io",
        "style": "Sukhveer prefers answers with code",
        "language": "Sukhveer's favourite programming language is Rust",
    },
    "alex": {
        "deploy": "Alex runs everything on AWS Lambda",
        "style": "Alex wants short answers without code",
    },
}
# (user, question, the key whose fact must come first)
CHECKS = [
    ("sukhveer", "Where do I deploy?", "deploy"),
    ("sukhveer", "Which cloud hosts my apps?", "deploy"),
    ("sukhveer", "How should answers be formatted?", "style"),
    ("alex", "Where do I deploy?", "deploy"),
    ("sukhveer", "Fly.io", "deploy"),
]


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.1f} ms"


def demo(
    store: StoreUrl = None,
    verify: Annotated[bool, typer.Option("--verify", hidden=True)] = False,
) -> None:
    """Store facts for two users, then search them by meaning from a second process."""
    from memshelf.stores import open_store

    settings = build_settings(store)
    if verify:
        raise typer.Exit(_verify(settings.store_url))
    typer.echo(f"memshelf demo — store: {settings.store_url or settings.default_store_path}")
    start = time.perf_counter()
    with open_store(settings=settings) as opened:
        typer.echo(f"[1] opened the store ({_ms(start)})")
        start = time.perf_counter()
        for user, facts in FACTS.items():
            for key, text in facts.items():
                opened.put(memories_namespace(user), key, {"text": text})
        count = sum(len(f) for f in FACTS.values())
        typer.echo(f"[1] stored {count} facts for {len(FACTS)} users ({_ms(start)})")
    typer.echo("[2] searching from a new process (proves the facts are on disk)…")
    cmd = [sys.executable, "-m", "memshelf.cli", "demo", "--verify"]
    if store is not None:
        cmd += ["--store", store]
    code = subprocess.run(cmd, check=False).returncode
    typer.echo("demo passed" if code == 0 else "demo FAILED")
    raise typer.Exit(code)


def _verify(store_url: str | None) -> int:
    from memshelf.stores import open_store

    failures = 0
    start = time.perf_counter()
    with open_store(store_url) as opened:
        typer.echo(f"    opened the store again ({_ms(start)})")
        for user, question, expected in CHECKS:
            start = time.perf_counter()
            hits = opened.search(memories_namespace(user), query=question, limit=3)
            took = _ms(start)
            owners_ok = all(h.namespace == memories_namespace(user) for h in hits)
            ok = bool(hits) and hits[0].key == expected and owners_ok
            failures += not ok
            mark = "ok " if ok else "FAIL"
            top = hits[0].value["text"] if hits else "(nothing)"
            score = f"{hits[0].score:.2f}" if hits and hits[0].score is not None else "-"
            typer.echo(f"    {mark} {user:>8}: {question!r} -> {top!r} (score {score}, {took})")
        leaked = [
            h
            for h in opened.search(memories_namespace("sukhveer"), query="AWS Lambda", limit=10)
            if "Alex" in h.value["text"]
        ]
        failures += bool(leaked)
        typer.echo(
            f"    {'FAIL' if leaked else 'ok  '} users stay apart: no Alex fact on Sukhveer's shelf"
        )
    return 1 if failures else 0
