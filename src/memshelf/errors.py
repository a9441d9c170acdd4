"""Every error memshelf raises on purpose, so callers can catch one base class.

Each message names the problem and the fix. The edges (CLI, service) turn
these into friendly messages or HTTP statuses; the core never does. The CLI
prints every one as ``error: <what>. <how to fix>`` on stderr with exit code 2;
``tests/faults`` injects each fault the README's "When things go wrong" table
lists and checks that this, and nothing else, is what a user sees.

    MemshelfError
    ├── ConfigurationError          bad or unsafe settings, unknown store URL
    ├── NamespaceError              a namespace or user id that cannot be used
    │   └── MissingUserIdError      no user id where one is required
    ├── EmbeddingError              the embedder cannot be used
    │   ├── EmbedderLoadError       model or tokenizer missing, corrupted or unreadable
    │   ├── EmbeddingDimensionError vectors of the wrong length
    │   └── EmbedderMismatchError   store built by another embedder (fix: memshelf reembed)
    ├── MessageTooLargeError        a user message over the agent's size limit
    ├── InvalidInputError           a fact, record or filter that cannot be used as given
    ├── NotFoundError               no such thread or memory for this owner (another
    │                               owner's looks exactly like one that does not exist)
    ├── StoreError                  the store cannot serve the request
    │   ├── StoreFileError          the SQLite file is not a store, read-only, full, locked
    │   │                           or from a newer memshelf (``.path`` names it)
    │   ├── StoreUnavailableError   the Redis server went away or refused mid-run
    │   └── ValueTooLargeError      a value over the configured size limit
    └── ModelError                  the chat model cannot be used
        ├── ModelNotInstalledError  local model not installed (fix: memshelf models install)
        ├── ModelFileError          local model file corrupted, truncated or not the pinned one
        └── ProviderKeyMissingError hosted provider chosen without its API key
"""

from __future__ import annotations


class MemshelfError(Exception):
    """Base class of every error memshelf raises on purpose."""


class ConfigurationError(MemshelfError, ValueError):
    """Settings or options that cannot work; the message says which and how to fix them."""


class NamespaceError(MemshelfError, ValueError):
    """A namespace or user id that cannot be stored or searched safely."""


class MissingUserIdError(NamespaceError):
    """A user id was required and none (or an empty one) was given."""


class EmbeddingError(MemshelfError):
    """The embedder could not produce usable vectors."""


class EmbedderLoadError(EmbeddingError):
    """The embedding model or tokenizer could not be loaded."""


class EmbeddingDimensionError(EmbeddingError, ValueError):
    """An embedder returned vectors whose length differs from the configured dims."""


class EmbedderMismatchError(EmbeddingError):
    """The store's vectors were built by a different embedder than the one configured."""

    def __init__(self, stored: str, configured: str, path: str | None = None) -> None:
        self.stored = stored
        self.configured = configured
        where = f" at {path}" if path else ""
        super().__init__(
            f"The store{where} was built with embedder {stored!r}, but {configured!r} "
            "is configured. Searching would compare vectors from different models. "
            "Either configure the original embedder again, or run `memshelf reembed` "
            "to re-embed every item with the configured one (no item is lost)."
        )


class MessageTooLargeError(MemshelfError, ValueError):
    """A user message longer than the agent accepts; it was not answered or remembered."""


class InvalidInputError(MemshelfError, ValueError):
    """A fact the guard refuses, a malformed import record or an unusable search filter;
    nothing was written. The message names the offending input and what is accepted."""


class NotFoundError(MemshelfError, LookupError):
    """The owner has no such object; the message never tells whether someone else does."""


class StoreError(MemshelfError):
    """The store could not serve a request."""


class StoreFileError(StoreError):
    """The SQLite store file cannot be used as asked; a failed batch wrote nothing."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class StoreUnavailableError(StoreError):
    """The store's server could not be reached or dropped the connection mid-request."""


class ValueTooLargeError(StoreError, ValueError):
    """A value larger than the store accepts; nothing was written."""


class ModelError(MemshelfError):
    """The chat model could not be created, loaded or called."""


class ModelNotInstalledError(ModelError):
    """The configured local model is not installed."""


class ModelFileError(ModelError):
    """The local model file is corrupted, truncated or not the pinned file."""


class ProviderKeyMissingError(ModelError, ConfigurationError):
    """A hosted provider was chosen but its API key variable is not set."""


__all__ = [
    "ConfigurationError",
    "EmbedderLoadError",
    "EmbedderMismatchError",
    "EmbeddingDimensionError",
    "EmbeddingError",
    "InvalidInputError",
    "MemshelfError",
    "MessageTooLargeError",
    "MissingUserIdError",
    "ModelError",
    "ModelFileError",
    "ModelNotInstalledError",
    "NamespaceError",
    "NotFoundError",
    "ProviderKeyMissingError",
    "StoreError",
    "StoreFileError",
    "StoreUnavailableError",
    "ValueTooLargeError",
]
