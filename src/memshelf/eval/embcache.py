"""Embeddings kept on disk between evaluation runs, so a re-run embeds only new texts.

On two shared cores, embedding locomo-dev's turns and windows takes minutes; a
cross-validation over many configurations would redo it for every run. Vectors
are keyed by the embedder's fingerprint and the text's sha256, in one SQLite
file: a different model never reads another's vectors.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from memshelf.embeddings import fingerprint
from memshelf.errors import ConfigurationError

_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"


class DiskCachedEmbeddings(Embeddings):
    """Wraps an embedder; documents (and, if asked, queries) are looked up on disk first.

    Query caching is for tuning runs only: a run that reports query latency must
    embed each query for real, as the agent's recall does.
    """

    def __init__(self, inner: Embeddings, dims: int, path: Path, *, queries: bool = False) -> None:
        self.inner = inner
        self.dims = dims
        self.fingerprint = fingerprint(inner, dims)
        self.queries = queries
        self._lock = threading.Lock()
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False)
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(
                f"Cannot open the embedding cache {path}: {exc}. Pass another path "
                "(--embed-cache) or delete the file."
            ) from exc

    def _key(self, kind: str, text: str) -> str:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return f"{self.fingerprint}|{kind}|{digest}"

    def _cached(self, kind: str, texts: list[str]) -> list[list[float]]:
        keys = [self._key(kind, t) for t in texts]
        found: dict[str, list[float]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._conn.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32).tolist()
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            if kind == "q":
                fresh = [self.inner.embed_query(t) for t in missing]
            else:
                fresh = self.inner.embed_documents(missing)
            rows = []
            for text, vec in zip(missing, fresh, strict=True):
                key = self._key(kind, text)
                found[key] = list(vec)
                rows.append((key, np.asarray(vec, dtype=np.float32).tobytes()))
            with self._lock, self._conn:
                self._conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
        return [found[k] for k in keys]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._cached("d", list(texts))

    def embed_query(self, text: str) -> list[float]:
        if not self.queries:
            return self.inner.embed_query(text)
        return self._cached("q", [text])[0]

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Uncached queries in one call when the inner embedder batches them."""
        many = getattr(self.inner, "embed_queries", None)
        if self.queries or not callable(many):
            return [self.embed_query(t) for t in texts]
        return list(many(texts))

    def close(self) -> None:
        self._conn.close()
