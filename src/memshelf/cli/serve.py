"""``memshelf serve``: the HTTP service (uvicorn), safe by default."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, build_settings


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it local.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8123,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    store: StoreUrl = None,
) -> None:
    """Serve the agent and the memory API (LangGraph-server compatible, plus /v1)."""
    import uvicorn

    from memshelf.config import redact
    from memshelf.errors import ConfigurationError
    from memshelf.ops.keys import KeyRing
    from memshelf.stores import open_store

    settings = build_settings(store)
    with open_store(settings=settings) as opened:
        has_keys = KeyRing(opened).any_active()
    if not has_keys:
        advice = "Create one with `memshelf keys create --user <user id>`."
        if not _loopback(host):
            raise ConfigurationError(
                f"Refusing to bind {host} with no API key configured: anyone who can reach "
                f"it would be refused anyway, so this is a mistake. {advice}"
            )
        typer.echo(
            f"warning: no API key exists yet, so every request will get 401. {advice}", err=True
        )
    if store is not None:
        os.environ["MEMSHELF_STORE_URL"] = store  # each worker process reads its settings
    typer.echo(
        f"memshelf serving on http://{host}:{port} (store {redact(settings.store_url)})", err=True
    )
    uvicorn.run(
        "memshelf.service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
    )
