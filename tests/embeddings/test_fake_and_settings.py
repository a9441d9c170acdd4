from __future__ import annotations

import numpy as np
import pytest

from memshelf.config import Settings
from memshelf.embeddings import FakeEmbedder, fingerprint, from_settings
from memshelf.errors import ConfigurationError


def test_fake_is_deterministic_and_word_sensitive() -> None:
    a, b = FakeEmbedder(32), FakeEmbedder(32)
    assert a.embed_query("Deploy on fly") == b.embed_query("deploy on FLY")
    v = np.array(a.embed_documents(["deploy on fly", "deploy on aws", "ramen noodles"]))
    assert v[0] @ v[1] > v[0] @ v[2]


def test_fingerprints_distinguish_embedders() -> None:
    def embed(texts: list[str]) -> list[list[float]]:
        return [[0.0]] * len(texts)

    assert fingerprint(FakeEmbedder(8), 8) != fingerprint(FakeEmbedder(8, seed=1), 8)
    assert fingerprint(embed, 8) != fingerprint(embed, 16)
    assert "embed" in fingerprint(embed, 8)


def test_settings_select_embedders(settings: Settings) -> None:
    embed, dims = from_settings(settings.model_copy(update={"embeddings": "fake:16"}))
    assert dims == 16 and len(embed.embed_query("x")) == 16
    with pytest.raises(ConfigurationError, match="MEMSHELF_EMBEDDINGS_DIMS"):
        from_settings(settings.model_copy(update={"embeddings": "openai:text-embedding-3-small"}))
