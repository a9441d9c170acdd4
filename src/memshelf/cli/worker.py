"""``memshelf worker``: run memory-extraction jobs from the Redis queue the service fills."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, build_settings


def worker(
    store: StoreUrl = None,
    model: ModelSpec = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Jobs run at once (one thread's jobs run in order); default "
            "MEMSHELF_EXTRACTION_CONCURRENCY (2).",
        ),
    ] = None,
) -> None:
    """Extract memories from the jobs `memshelf serve` queues on Redis, until SIGTERM.

    Needs a redis:// store (MEMSHELF_STORE_URL or --store) and the same
    MEMSHELF_REDIS_PREFIX as the service. Run as many as you like, on any machine that
    reaches the Redis: they share the jobs. On SIGTERM or Ctrl-C the running jobs finish
    and the queued ones stay for the other workers.
    """
    from memshelf.config import redact
    from memshelf.llm import chat_model
    from memshelf.memory.queue import ExtractionWorker, require_redis
    from memshelf.stores import open_store

    settings = build_settings(store, model)
    require_redis(settings)  # a clear error before anything is opened
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if concurrency is not None:
        settings = settings.model_copy(update={"extraction_concurrency": concurrency})
    with open_store(settings=settings) as opened:
        runner = ExtractionWorker.from_settings(
            settings, store=opened, model=chat_model(settings=settings)
        )
        runner.run(
            on_ready=lambda: typer.echo(
                f"memshelf worker ready (store {redact(settings.store_url)}, "
                f"prefix {settings.redis_prefix!r}, concurrency "
                f"{settings.extraction_concurrency}); SIGTERM or Ctrl-C stops it gracefully",
                err=True,
            )
        )
    typer.echo("memshelf worker stopped", err=True)
