"""Store backends and :func:`open_store`, which picks one from a URL.

``None`` is the embedded default file in the data directory;
``sqlite:///absolute/path.db`` (or a plain path) a SQLite file; ``memory://`` an
in-process SQLite database with the same semantics (for tests);
``redis://host:6379/0`` or ``rediss://…`` memshelf's Redis store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.store.base import IndexConfig, TTLConfig

from memshelf.config import Settings, ensure_data_dir
from memshelf.errors import ConfigurationError
from memshelf.stores.ann import AnnConfig
from memshelf.stores.base import MemshelfStore
from memshelf.stores.sqlite import SqliteStore

DEFAULT_FIELDS = ["text"]
SWEEP_INTERVAL_MINUTES = 60


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def default_index(settings: Settings) -> IndexConfig:
    """Meaning search with the configured embedder over the ``text`` field of values."""
    from memshelf.embeddings import from_settings

    embed, dims = from_settings(settings)
    return {"embed": embed, "dims": dims, "fields": list(DEFAULT_FIELDS)}


def default_ttl(settings: Settings) -> TTLConfig | None:
    """Items expire ``memory_ttl_days`` after their last read or write (default 90 days)."""
    minutes = settings.default_ttl_minutes
    if minutes is None:
        return None
    return {
        "default_ttl": minutes,
        "refresh_on_read": True,
        "sweep_interval_minutes": SWEEP_INTERVAL_MINUTES,
    }


def is_redis_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("redis://", "rediss://"))


def describe(url: str | None, settings: Settings) -> str:
    """Where the store lives, for people: a file path, or a Redis URL with its user name
    and password shown as ``***`` (never the secret)."""
    from memshelf.config import display_url

    if is_redis_url(url):
        return f"redis {display_url(url)}, key prefix {settings.redis_prefix!r}"
    return resolve_path(url, settings)


def resolve_path(url: str | None, settings: Settings) -> str:
    """The SQLite path a store URL names (``:memory:`` for memory://)."""
    if url is None or url == "":
        return str(settings.default_store_path)
    if url.startswith("memory://"):
        return ":memory:"
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if path in ("", "/", "/:memory:", ":memory:"):
            return ":memory:"
        if not path.startswith("/"):
            raise ConfigurationError(
                f"sqlite URLs need an absolute path: sqlite:///absolute/path.db (got {url!r})."
            )
        return path
    if is_redis_url(url):
        raise ConfigurationError("A Redis URL names a server, not a SQLite path.")
    if "://" in url:
        raise ConfigurationError(
            f"Unknown store URL scheme in {url.split('://')[0]!r}://…; use "
            "redis://host:6379/0, sqlite:///absolute/path.db, memory:// or leave it unset "
            "for the default file."
        )
    return str(Path(url).expanduser().resolve())


def open_store(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    index: IndexConfig | None = DEFAULT,
    ttl: TTLConfig | None = DEFAULT,
    **options: Any,
) -> MemshelfStore:
    """Open a memshelf store; usable as a context manager.

    By default it is indexed for meaning with the configured embedder on the
    ``text`` field and items get a 90-day refresh-on-read TTL, whichever the
    backend. ``index`` and ``ttl`` take LangGraph's own ``IndexConfig`` /
    ``TTLConfig`` (``None`` turns them off); other options go to the backend
    (e.g. ``keyword_weight``; for SQLite ``ann``, by default
    ``AnnConfig(min_rows=settings.ann_min_rows)``; for Redis ``prefix`` or
    ``vector_algorithm``).
    """
    settings = settings or Settings()
    if url is None:
        url = settings.store_url
    options.setdefault("max_value_bytes", settings.max_value_bytes)
    index = default_index(settings) if index is DEFAULT else index
    ttl = default_ttl(settings) if ttl is DEFAULT else ttl
    if is_redis_url(url):
        from memshelf.stores.redis import RedisStore

        password = settings.redis_password
        options.setdefault("prefix", settings.redis_prefix)
        options.setdefault("socket_timeout", settings.redis_socket_timeout)
        options.setdefault("password", password.get_secret_value() if password else None)
        return RedisStore(str(url), index=index, ttl=ttl, **options)
    if not url:  # the default file: a bad data folder is named with the setting behind it
        ensure_data_dir(settings)
    options.setdefault("ann", AnnConfig(min_rows=settings.ann_min_rows or None))
    options.setdefault("vector_cache_bytes", settings.vector_cache_mb << 20)
    return SqliteStore(resolve_path(url, settings), index=index, ttl=ttl, **options)


__all__ = [
    "DEFAULT_FIELDS",
    "AnnConfig",
    "MemshelfStore",
    "SqliteStore",
    "default_index",
    "default_ttl",
    "describe",
    "is_redis_url",
    "open_store",
]
