"""Options shared by commands, and the one place settings are built for the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.config import Settings

StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: MEMSHELF_STORE_URL or the embedded file)."),
]


def build_settings(store: str | None = None) -> Settings:
    settings = Settings()
    if store is not None:
        settings = settings.model_copy(update={"store_url": store})
    return settings
