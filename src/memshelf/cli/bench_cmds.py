"""``memshelf bench store``: the store benchmark, with a PNG of latency vs items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


@app.command("store")
def store(
    items: Annotated[str, typer.Option("--items", help="Item counts, e.g. 10000,100000.")] = (
        "10000,100000"
    ),
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="sqlite, redis, langgraph-memory, langgraph-sqlite, langgraph-redis.",
        ),
    ] = "sqlite,langgraph-memory,langgraph-sqlite",
    searches: Annotated[int, typer.Option("--searches")] = 1000,
    gets: Annotated[int, typer.Option("--gets")] = 1000,
    peer_searches: Annotated[int, typer.Option("--peer-searches")] = 100,
    json_out: Annotated[Path, typer.Option("--json")] = Path("benchmarks/out/store_bench.json"),
) -> None:
    """Put, search and get latency of memshelf's store vs LangGraph's, same run, same vectors."""
    from memshelf.eval.storebench import plot, run_bench

    backends = [b.strip() for b in backend.split(",") if b.strip()]
    if "sqlite" in backends:  # memshelf first: the ratios are against it
        backends.remove("sqlite")
        backends.insert(0, "sqlite")
    try:
        rows = run_bench(
            [int(x) for x in items.split(",")],
            backends,
            searches=searches,
            gets=gets,
            peer_searches=peer_searches,
            log=typer.echo,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(rows, indent=2) + "\n")
    png = json_out.with_suffix(".png")
    typer.echo(f"report: {json_out}" + (f", plot: {png}" if plot(rows, png) else ""))
