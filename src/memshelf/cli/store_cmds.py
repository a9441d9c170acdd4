"""Store maintenance: re-embed every item, sweep expired ones, a local Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, build_settings


def reembed(store: StoreUrl = None) -> None:
    """Re-embed every item with the configured embedder (after changing MEMSHELF_EMBEDDINGS)."""
    from memshelf.stores import open_store

    with open_store(settings=build_settings(store), verify_embedder=False) as opened:
        before = opened.meta("embedder") or "(none)"
        count = opened.reembed()
        typer.echo(f"re-embedded {count} items: {before} -> {opened.embedder_id}")


def sweep(store: StoreUrl = None) -> None:
    """Delete expired items now (reads already hide them; this frees the space), and the
    history of memories that are gone, so their text does not outlive them."""
    from memshelf.memory.shelf import prune_history
    from memshelf.stores import open_store

    with open_store(settings=build_settings(store)) as opened:
        typer.echo(f"deleted {opened.sweep_ttl()} expired items")
        typer.echo(f"deleted {prune_history(opened)} history events of memories that are gone")


def redis_server(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Data directory (default: a temporary one).")
    ] = None,
    appendonly: Annotated[
        bool, typer.Option("--appendonly/--no-appendonly", help="Keep an append-only file.")
    ] = True,
    fsync: Annotated[
        str, typer.Option("--fsync", help="appendfsync: always, everysec or no.")
    ] = "everysec",
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (default: a free one, printed).")
    ] = None,
) -> None:
    """Run a local Redis 8 with the query engine on 127.0.0.1 until Ctrl-C or SIGTERM
    (development); either stops the server and removes a temporary data directory."""
    import signal
    import time

    from memshelf.testing import redis_process

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    with redis_process(
        appendonly=appendonly, appendfsync=fsync, directory=directory, port=port
    ) as proc:
        typer.echo(f"Redis with the query engine at {proc.url} (data in {proc.directory})")
        typer.echo(f"use it: MEMSHELF_STORE_URL={proc.url} memshelf demo   (Ctrl-C stops)")
        try:
            while proc.process is not None and proc.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            typer.echo("stopping Redis")
