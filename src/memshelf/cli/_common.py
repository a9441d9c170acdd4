"""Options shared by commands, and the one place settings are built for the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.config import Settings, load_settings

StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: MEMSHELF_STORE_URL or the embedded file)."),
]
ModelSpec = Annotated[
    str | None,
    typer.Option("--model", help="Chat model, e.g. local:qwen2.5-coder-1.5b or openai:gpt-4o."),
]
UserId = Annotated[str, typer.Option("--user", "-u", help="Whose shelf (the user id).")]


def build_settings(store: str | None = None, model: str | None = None) -> Settings:
    settings = load_settings()
    updates: dict[str, str] = {}
    if store is not None:
        updates["store_url"] = store
    if model is not None:
        updates["chat_model"] = model
    return settings.model_copy(update=updates) if updates else settings
