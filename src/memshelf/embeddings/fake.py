"""A deterministic embedder for tests: hashed bag of words, so shared words mean similar vectors.

Shipped as real code (like httpx's MockTransport) so every test suite uses the
same well-behaved fake instead of ad-hoc mocks.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from langchain_core.embeddings import Embeddings

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder(Embeddings):
    """Maps each lower-cased word to a seeded random direction and sums them."""

    def __init__(self, dims: int = 64, seed: int = 0) -> None:
        self.dims = dims
        self.seed = seed
        self.fingerprint = f"fake:hashed-words:{dims}:{seed}"
        self.calls = 0

    def _word_vector(self, word: str) -> np.ndarray:
        digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        return rng.standard_normal(self.dims)

    def _embed(self, text: str) -> list[float]:
        vec = np.zeros(self.dims)
        for word in _WORD.findall(text.lower()):
            vec += self._word_vector(word)
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            norm = 1.0
        unit: list[float] = (vec / norm).tolist()
        return unit

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._embed(text)
