"""``memshelf serve``: the HTTP service (uvicorn), safe by default."""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, build_settings
from memshelf.config import Settings

log = logging.getLogger("memshelf.serve")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_label(settings: Settings) -> str:
    """How the start-up line names the store: its kind and the hash of its URL (the same
    hash the service logs), never the URL, which can hold a password."""
    from memshelf.config import redact
    from memshelf.stores import is_redis_url

    kind = "redis" if is_redis_url(settings.store_url) else "sqlite"
    return f"{kind} {redact(settings.store_url or str(settings.default_store_path))}"


def preflight(settings: Settings) -> None:
    """Fail before uvicorn starts, with the one-line ``error:`` of the CLI, on what would
    otherwise fail the service's start-up inside uvicorn as a long traceback: a chat model
    that is not installed (a fresh MEMSHELF_DATA_DIR has no models) or lacks its API key.
    The store (file, Redis, embedder) is checked by opening it, which ``serve`` does first."""
    from memshelf.llm import chat_model

    chat_model(settings=settings)  # a local model is only located and verified, not loaded


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it local.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8123,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    store: StoreUrl = None,
) -> None:
    """Serve the agent and the memory API (LangGraph-server compatible, plus /v1).

    Once it starts, stderr holds JSON lines only (start-up, requests, uvicorn's own)."""
    import uvicorn

    from memshelf.errors import ConfigurationError
    from memshelf.ops.keys import KeyRing
    from memshelf.service.logs import configure_process_logging
    from memshelf.stores import open_store

    settings = build_settings(store)
    with open_store(settings=settings) as opened:
        has_keys = KeyRing(opened).any_active()
    preflight(settings)
    advice = "Create one with `memshelf keys create --user <user id>`."
    if not has_keys and not _loopback(host):
        raise ConfigurationError(
            f"Refusing to bind {host} with no API key configured: anyone who can reach "
            f"it would be refused anyway, so this is a mistake. {advice}"
        )
    configure_process_logging(settings)
    if not has_keys:
        log.warning(f"no API key exists yet, so every request will get 401. {advice}")
    if store is not None:
        os.environ["MEMSHELF_STORE_URL"] = store  # each worker process reads its settings
    log.info(
        f"memshelf serving on http://{host}:{port} (store {store_label(settings)})",
        extra={"url": f"http://{host}:{port}", "workers": workers},
    )
    uvicorn.run(
        "memshelf.service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # uvicorn's lines go through the service's JSON handler
        access_log=False,  # the service logs one line per request, without the raw path
    )
