"""Embedders: the local ONNX default, a deterministic fake, any LangChain Embeddings.

:func:`fingerprint` names the model that built a store's vectors, so a store can
refuse to mix vectors from different models.
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from memshelf.config import Settings
from memshelf.embeddings.fake import FakeEmbedder
from memshelf.embeddings.local import DIMS as LOCAL_DIMS
from memshelf.embeddings.local import LocalEmbedder, shared_local_embedder
from memshelf.errors import ConfigurationError


def fingerprint(embed: Any, dims: int) -> str:
    """A stable name for an embedder: its own ``fingerprint``, else its class/function and model."""
    own = getattr(embed, "fingerprint", None)
    if isinstance(own, str) and own:
        return own if own.endswith(f"/{dims}") else f"{own}/{dims}"
    if isinstance(embed, str):
        return f"{embed}/{dims}"
    model = None
    for attr in ("model", "model_name", "model_id"):
        value = getattr(embed, attr, None)
        if isinstance(value, str) and value:
            model = value
            break
    target = embed if callable(embed) and not isinstance(embed, Embeddings) else type(embed)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    return f"{name}:{model}/{dims}" if model else f"{name}/{dims}"


def from_settings(settings: Settings) -> tuple[Embeddings, int]:
    """The embedder the settings name, and its dims."""
    spec = settings.embeddings.strip()
    if spec == "local":
        return shared_local_embedder(settings.embed_threads), LOCAL_DIMS
    if spec == "fake" or spec.startswith("fake:"):
        dims = int(spec.split(":", 1)[1]) if ":" in spec else (settings.embeddings_dims or 64)
        return FakeEmbedder(dims), dims
    if settings.embeddings_dims is None:
        raise ConfigurationError(
            f"MEMSHELF_EMBEDDINGS={spec!r} needs its vector length: set "
            "MEMSHELF_EMBEDDINGS_DIMS (e.g. 1536 for openai:text-embedding-3-small)."
        )
    try:
        from langgraph.store.base import ensure_embeddings

        return ensure_embeddings(spec), settings.embeddings_dims
    except Exception as exc:
        raise ConfigurationError(
            f"Could not create the embedder {spec!r}: {exc}. Use 'local', or a LangChain "
            "init_embeddings string with its provider package installed "
            "(e.g. pip install langchain langchain-openai)."
        ) from exc


__all__ = [
    "LOCAL_DIMS",
    "CachedDocuments",
    "FakeEmbedder",
    "LocalEmbedder",
    "fingerprint",
    "from_settings",
    "shared_local_embedder",
]


class CachedDocuments(Embeddings):
    """Embeds each distinct document text once across stores; queries always go through.

    For evaluations and benchmarks that load the same texts into several stores.
    """

    def __init__(self, inner: Embeddings, dims: int) -> None:
        self.inner = inner
        self.fingerprint = fingerprint(inner, dims)
        self.memo: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self.memo[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Queries go through, in one call when the inner embedder batches them."""
        many = getattr(self.inner, "embed_queries", None)
        return list(many(texts)) if callable(many) else [self.inner.embed_query(t) for t in texts]
