"""Connecting to Redis, and the key housekeeping every memshelf Redis user shares.

Kept apart from the store's query code; ``memshelf.stores.redis`` re-exports
``connect``, ``drop_prefix`` and ``password_args``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memshelf.config import redact
from memshelf.errors import ConfigurationError

if TYPE_CHECKING:
    import redis


def key_batches(client: redis.Redis, pattern: str, size: int = 1000) -> Iterator[list[bytes]]:
    """Keys matching ``pattern`` (SCAN, never KEYS), in lists of up to ``size``."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=size):
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Drop a store's two indexes and unlink every key under ``prefix``."""
    import redis

    for name in (f"{prefix}:items", f"{prefix}:vectors"):
        with contextlib.suppress(redis.ResponseError):  # never created
            client.execute_command("FT.DROPINDEX", name)  # type: ignore[no-untyped-call]
    for batch in key_batches(client, f"{prefix}:*"):
        client.unlink(*batch)


def password_args(url: str, password: str | None) -> dict[str, str]:
    """``{"password": …}`` when one is configured and the URL does not carry its own."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return {"password": password} if password and "@" not in netloc else {}


def connect(url: str, password: str | None = None) -> redis.Redis:
    """A client for ``redis://`` / ``rediss://`` URLs; ``password`` fills in a URL without one."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "The Redis backend needs the redis client: pip install 'memshelf[redis]'."
        ) from exc
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"A Redis URL starts with redis:// or rediss:// (got {redact(url)})."
        )
    kwargs: dict[str, Any] = {"protocol": 3, "decode_responses": False}
    kwargs.update(password_args(url, password))
    client = redis.Redis.from_url(url, **kwargs)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise ConfigurationError(
            f"Redis at {redact(url)} (URL hash) refused the password; set it in the URL "
            "(redis://:PASSWORD@host:6379/0) or MEMSHELF_REDIS_PASSWORD."
        ) from exc
    except redis.ConnectionError as exc:
        raise ConfigurationError(
            f"Cannot reach Redis at {redact(url)} (URL hash): {type(exc).__name__}. Is it running? "
            "For a local one: memshelf redis-server."
        ) from exc
    return client


__all__ = ["connect", "drop_prefix", "key_batches", "password_args"]
