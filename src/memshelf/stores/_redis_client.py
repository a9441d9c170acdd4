"""Connecting to Redis, and the key housekeeping every memshelf Redis user shares.

Kept apart from the store's query code; ``memshelf.stores.redis`` re-exports
``connect``, ``drop_prefix`` and ``password_args``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memshelf.config import display_url, redact
from memshelf.errors import ConfigurationError, StoreUnavailableError

if TYPE_CHECKING:
    import redis

DEFAULT_SOCKET_TIMEOUT_S = 10.0


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


def connect(
    url: str, password: str | None = None, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S
) -> redis.Redis:
    """A client for ``redis://`` / ``rediss://`` URLs; ``password`` fills in a URL without one.

    ``socket_timeout`` bounds every reply: a server that stops answering (a stalled
    host, a dropped network) fails the call after the retries instead of hanging it."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "The Redis backend needs the redis client: pip install 'memshelf[redis]'."
        ) from exc
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"A Redis URL starts with redis:// or rediss:// (got {redact(url)})."
        )
    kwargs: dict[str, Any] = {"protocol": 3, "decode_responses": False}
    kwargs.update(password_args(url, password))
    # A restarted server is reconnected to by the next command, within a bounded wait.
    kwargs["retry"] = Retry(ExponentialBackoff(cap=_RETRY_CAP_S, base=0.1), _RETRIES)
    kwargs["retry_on_error"] = [redis.ConnectionError, redis.TimeoutError]
    kwargs.setdefault("socket_connect_timeout", _CONNECT_TIMEOUT_S)
    if not socket_timeout > 0:
        raise ConfigurationError(
            f"The Redis socket timeout must be a positive number of seconds, got "
            f"{socket_timeout!r}; set MEMSHELF_REDIS_SOCKET_TIMEOUT (default 10)."
        )
    kwargs["socket_timeout"] = socket_timeout
    kwargs["health_check_interval"] = _HEALTH_CHECK_S  # an idle connection is pinged first
    where = f"Redis at {display_url(url)}"  # host, port, db; user and password as ***
    try:
        client = client_class().from_url(url, **kwargs)
    except ValueError:  # e.g. a port that is not a number; the parser's text can hold part
        # of a password with "/" in it, so neither it nor the exception chain is shown
        raise ConfigurationError(
            f"The Redis URL {display_url(url)} cannot be read (is its port a number? a "
            "password with / # ? or @ must be percent-encoded). Write it as "
            "redis://[:PASSWORD@]HOST:6379/0."
        ) from None
    client.memshelf_where = where  # type: ignore[attr-defined]
    db = int(client.connection_pool.connection_kwargs.get("db", 0) or 0)
    if db != 0:
        raise ConfigurationError(
            f"{where} names database {db}; memshelf needs database 0, the only one the query "
            "engine indexes. Use redis://host:6379/0, and MEMSHELF_REDIS_PREFIX to keep "
            "several memshelf stores apart in one server."
        )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise ConfigurationError(
            f"{where} refused the password; set it in the URL "
            "(redis://:PASSWORD@host:6379/0) or MEMSHELF_REDIS_PASSWORD."
        ) from exc
    except redis.ConnectionError as exc:
        cause = exc.__cause__ if isinstance(exc, StoreUnavailableError) else exc
        raise ConfigurationError(
            f"Cannot reach {where}: {type(cause).__name__}. Is it running? "
            "For a local one: memshelf redis-server."
        ) from exc
    except redis.ResponseError as exc:
        raise ConfigurationError(f"{where} refused the connection: {exc}. Check the URL.") from exc
    warn_if_evicting(client, where)
    return client


_RETRIES = 3
_CONNECT_TIMEOUT_S = 5.0
_HEALTH_CHECK_S = 30
_CLIENT: type[redis.Redis] | None = None


def client_class() -> type[redis.Redis]:
    """``redis.Redis``, except that a connection lost after the retries raises
    :class:`~memshelf.errors.StoreUnavailableError` (still a ``redis.ConnectionError``)."""
    global _CLIENT
    if _CLIENT is not None:
        return _CLIENT
    import redis
    from redis.client import Pipeline

    class RedisUnavailableError(StoreUnavailableError, redis.ConnectionError):
        """The server went away mid-run and did not come back within the retries."""

    def lost(where: str, exc: Exception) -> RedisUnavailableError:
        return RedisUnavailableError(
            f"Lost the connection to {where} ({type(exc).__name__}: {exc}), or it stopped "
            f"answering (MEMSHELF_REDIS_SOCKET_TIMEOUT), and it did not come back within "
            f"{_RETRIES} retries. Check that the server is up (for a local "
            "one: memshelf redis-server) and run the command again: writes that were "
            "acknowledged are kept (with AOF on), the interrupted one was not applied or is "
            "applied whole."
        )

    transient = (redis.ConnectionError, redis.TimeoutError)

    class MemshelfPipeline(Pipeline):
        memshelf_where = "Redis"

        def execute(self, raise_on_error: bool = True) -> list[Any]:
            try:
                return super().execute(raise_on_error)
            except redis.AuthenticationError:
                raise
            except transient as exc:
                raise lost(self.memshelf_where, exc) from exc

        def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
            """WATCH, and the reads between it and MULTI, run at once."""
            try:
                return super().immediate_execute_command(*args, **options)  # type: ignore[no-untyped-call]
            except redis.AuthenticationError:
                raise
            except transient as exc:
                raise lost(self.memshelf_where, exc) from exc

    class MemshelfRedis(redis.Redis):
        memshelf_where = "Redis"

        def execute_command(self, *args: Any, **options: Any) -> Any:
            try:
                return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
            except redis.AuthenticationError:
                raise
            except transient as exc:
                raise lost(self.memshelf_where, exc) from exc

        def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
            pipe = MemshelfPipeline(
                self.connection_pool, self.response_callbacks, transaction, shard_hint
            )
            pipe.memshelf_where = self.memshelf_where
            return pipe

    _CLIENT = MemshelfRedis
    return _CLIENT


_RETRY_CAP_S = 1.0
_warned: set[str] = set()
log = logging.getLogger("memshelf.stores.redis")


def eviction_policy(client: redis.Redis) -> str | None:
    """The server's ``maxmemory-policy``, or None when CONFIG is not allowed (managed Redis)."""
    import redis

    try:
        found = client.config_get("maxmemory-policy")
    except redis.ResponseError:
        return None
    for name, value in dict(found).items():
        if (name.decode() if isinstance(name, bytes) else str(name)) == "maxmemory-policy":
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def warn_if_evicting(client: redis.Redis, where: str) -> str | None:
    """Warn (once per server) when Redis may evict keys to save memory: memories would vanish."""
    policy = eviction_policy(client)
    if policy in (None, "noeviction") or where in _warned:
        return None
    _warned.add(where)
    message = (
        f"warning: {where} uses maxmemory-policy {policy}: when it fills up, Redis deletes "
        "keys, and memories with them. Set `maxmemory-policy noeviction` for memshelf's "
        "server (CONFIG SET maxmemory-policy noeviction, and in redis.conf)."
    )
    log.warning(message)
    return message


__all__ = [
    "client_class",
    "connect",
    "drop_prefix",
    "eviction_policy",
    "key_batches",
    "password_args",
    "warn_if_evicting",
]
