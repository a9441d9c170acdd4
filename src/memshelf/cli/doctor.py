"""``memshelf doctor``: versions, paths and fingerprints, never a secret."""

from __future__ import annotations

import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version

import typer

from memshelf.cli._common import StoreUrl, build_settings, check_store_file
from memshelf.config import Settings, redact

_PACKAGES = ["memshelf", "langgraph", "langchain-core", "onnxruntime", "tokenizers", "numpy"]
_PACKAGES += ["redis", "langgraph-checkpoint-redis"]


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def doctor(store: StoreUrl = None) -> None:
    """Print versions, the store path, the embedder fingerprint and connection-string hashes."""
    from memshelf.embeddings import fingerprint, from_settings
    from memshelf.stores import describe, open_store

    settings = build_settings(store)
    check_store_file(settings, reads_only=False)
    typer.echo(f"python          {platform.python_version()} ({platform.machine()})")
    typer.echo(f"sqlite          {sqlite3.sqlite_version}")
    for name in _PACKAGES:
        typer.echo(f"{name:<15} {_version(name)}")
    typer.echo(f"data dir        {settings.data_dir}")
    typer.echo(f"store url       {redact(settings.store_url)} (hash; unset = embedded default)")
    typer.echo(f"store           {describe(settings.store_url, settings)}")
    embed, dims = from_settings(settings)
    configured = fingerprint(embed, dims)
    typer.echo(f"embedder        {configured}")
    with open_store(settings=settings, verify_embedder=False) as opened:
        stats = opened.stats()
    stored = stats["embedder"]
    typer.echo(f"store embedder  {stored or '(none yet)'}")
    size = stats.get("file_bytes", stats.get("used_memory", 0))
    typer.echo(
        f"store contents  {stats['items']} items, {stats['vectors']} vectors, "
        f"{stats['namespaces']} namespaces, {size:,} bytes"
    )
    if stored and stored != configured:
        typer.secho(
            "warning: the store was built with another embedder; run `memshelf reembed`.",
            fg=typer.colors.YELLOW,
        )
    embed.embed_query("doctor check")  # loads and hash-checks the model files
    typer.echo("embedder check  ok")
    _check_chat_model(settings)


def _check_chat_model(settings: Settings) -> None:
    """The configured local chat model's state, in ``models list``'s words; a damaged file
    fails the check (exit 2), since every ``ask`` would fail on it. A model not installed
    yet is only reported: hosted models and a fresh machine need none."""
    from memshelf.errors import ModelFileError
    from memshelf.llm import parse_spec
    from memshelf.llm.install import model_path, model_state
    from memshelf.llm.registry import MODELS

    spec = parse_spec(settings.chat_model)
    if spec.provider != "local" or spec.model not in MODELS:
        typer.echo(f"chat model      {spec} (hosted; not checked here)")
        return
    model = MODELS[spec.model]
    state = model_state(model, settings.model_dir)
    typer.echo(f"chat model      local:{model.name}  {state}")
    if state.state == "damaged":
        raise ModelFileError(
            f"The local chat model file {model_path(model, settings.model_dir)} is damaged "
            f"({state.detail}). Run `{state.fix}` to replace it."
        )
