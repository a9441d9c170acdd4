"""Store maintenance: re-embed every item, sweep expired ones."""

from __future__ import annotations

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
    """Delete expired items now (reads already hide them; this frees the space)."""
    from memshelf.stores import open_store

    with open_store(settings=build_settings(store)) as opened:
        typer.echo(f"deleted {opened.sweep_ttl()} expired items")
