"""``memshelf demo``: the acceptance test users care about, on the embedded defaults.

1. thread A, user sukhveer states facts;  2. thread B asks where they deploy;
3. a NEW process, thread C, asks what cloud they use (answered from the file);
4. another user asks the same and gets none of sukhveer's facts.
Nothing already stored is deleted: step 1 counts only facts its own thread wrote.
Exits non-zero if any step fails its check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Annotated, Any

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, build_settings

USER = "sukhveer"
OTHER = "guest"  # with the run id appended: a user with a shelf that is surely empty
STATEMENT = "I'm Sukhveer, I deploy on Fly.io, and I prefer answers with code."
ASK_B = "Where do I deploy?"
ASK_C = "What cloud do I use?"


def _show(step: str, result: Any, ok: bool, why: str) -> None:
    typer.echo(f"\n[{step}] {'ok' if ok else 'FAILED'} — {why}")
    facts = [f["text"] for f in result.recalled]
    typer.echo(f"    recalled: {facts if facts else '(nothing)'}")
    typer.echo(f"    reply:    {result.reply!r}")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
    typer.echo(f"    time:     {result.total:.2f}s ({timing})")


def _mentions_fly(text: str) -> bool:
    return "fly" in text.lower()


def demo(
    store: StoreUrl = None,
    model: ModelSpec = None,
    step: Annotated[str | None, typer.Option("--step", hidden=True)] = None,
    run: Annotated[str | None, typer.Option("--run", hidden=True)] = None,
) -> None:
    """Tell the agent a fact in thread A; ask in thread B; restart; ask in thread C."""
    from memshelf.agent import open_agent
    from memshelf.agent.runtime import require_store
    from memshelf.agent.turn import run_turn
    from memshelf.memory import list_facts

    settings = build_settings(store, model)
    start = time.perf_counter()
    with open_agent(settings=settings) as graph:
        shelf = require_store(graph.store)
        loaded = time.perf_counter() - start
        if step == "restart":
            raise typer.Exit(_after_restart(graph, run or "x", loaded))
        run = uuid.uuid4().hex[:6]
        from memshelf.stores import describe

        typer.echo(f"memshelf demo (run {run}) — store {describe(settings.store_url, settings)}")
        typer.echo(f"chat model {settings.chat_model}; agent ready in {loaded:.2f}s")

        result = run_turn(graph, USER, f"A-{run}", STATEMENT)
        # Nothing is deleted beforehand: facts count only if this run's thread A stored them.
        stored = [
            i.value["text"]
            for i in list_facts(shelf, USER)
            if (i.value.get("provenance") or {}).get("thread_id") == f"A-{run}"
        ]
        ok_a = any(_mentions_fly(t) for t in stored)
        _show("1 thread A", result, ok_a, f"stored {stored}")

        result = run_turn(graph, USER, f"B-{run}", ASK_B)
        ok_b = _mentions_fly(result.reply)
        _show("2 thread B", result, ok_b, "answered from memory" if ok_b else "no Fly.io in reply")
    # this process has closed its store and thread file: the next one starts from disk
    typer.echo("\n[3] restarting: a new process asks in thread C…")
    cmd = [sys.executable, "-m", "memshelf.cli", "demo", "--step", "restart", "--run", run]
    if model:
        cmd += ["--model", model]
    env = dict(os.environ)  # the URL may hold a password: pass it in the environment, not argv
    if store:
        env["MEMSHELF_STORE_URL"] = store
    ok_cd = subprocess.run(cmd, check=False, env=env).returncode == 0
    passed = ok_a and ok_b and ok_cd
    typer.echo("\ndemo passed" if passed else "\ndemo FAILED")
    raise typer.Exit(0 if passed else 1)


def _after_restart(graph: Any, run: str, loaded: float) -> int:
    from memshelf.agent.turn import run_turn

    typer.echo(f"    (new process: agent ready in {loaded:.2f}s)")
    result = run_turn(graph, USER, f"C-{run}", ASK_C)
    ok_c = _mentions_fly(result.reply)
    _show("3 thread C", result, ok_c, "answered from the durable store" if ok_c else "no Fly.io")
    result = run_turn(graph, f"{OTHER}-{run}", f"D-{run}", ASK_B)
    ok_d = not result.recalled and not _mentions_fly(result.reply)
    _show("4 other user", result, ok_d, "no one else's facts" if ok_d else "LEAKED")
    return 0 if ok_c and ok_d else 1
