"""memshelf: long-term memory for LangGraph agents. Every user gets their own shelf."""

from memshelf.config import Settings
from memshelf.errors import (
    ConfigurationError,
    EmbedderLoadError,
    EmbedderMismatchError,
    EmbeddingDimensionError,
    EmbeddingError,
    InvalidInputError,
    MemshelfError,
    MessageTooLargeError,
    MissingUserIdError,
    ModelError,
    ModelFileError,
    ModelNotInstalledError,
    NamespaceError,
    NotFoundError,
    ProviderKeyMissingError,
    StoreError,
    StoreFileError,
    StoreUnavailableError,
    ValueTooLargeError,
)
from memshelf.namespaces import memories_namespace, team_namespace
from memshelf.stores import SqliteStore, open_store

__version__ = "0.1.0"

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
    "Settings",
    "SqliteStore",
    "StoreError",
    "StoreFileError",
    "StoreUnavailableError",
    "ValueTooLargeError",
    "__version__",
    "memories_namespace",
    "open_store",
    "team_namespace",
]
