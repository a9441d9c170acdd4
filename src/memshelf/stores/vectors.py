"""In-process exact vector search over one namespace's vectors.

The database row is the truth; a :class:`VectorBlock` is a cache of one
namespace's vectors as a contiguous float32 matrix, so a search is one BLAS
matrix-vector product. Writes patch the block in place (append, tombstone),
and a block compacts itself once a quarter of its rows are dead.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from memshelf.errors import EmbeddingDimensionError


def as_unit_matrix(vectors: Iterable[Iterable[float]] | np.ndarray, dims: int) -> np.ndarray:
    """Rows as unit-length float32, checked against ``dims`` (cosine = dot product)."""
    mat = np.asarray(
        vectors if isinstance(vectors, np.ndarray) else list(vectors), dtype=np.float32
    )
    if mat.ndim != 2 or mat.shape[1] != dims:
        got = mat.shape[1] if mat.ndim == 2 else mat.shape
        raise EmbeddingDimensionError(
            f"The embedder returned vectors of length {got}, but the store's index is "
            f"configured with dims={dims}. Set index['dims'] (or MEMSHELF_EMBEDDINGS_DIMS) to "
            "the embedder's real output size; nothing was written."
        )
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)
    return unit


class VectorBlock:
    """The vectors of one namespace: rows of (item id, unit vector)."""

    __slots__ = ("_alive", "_ids", "_mat", "_n", "_rows", "dims")

    def __init__(self, dims: int, capacity: int = 64) -> None:
        self.dims = dims
        self._mat = np.zeros((capacity, dims), dtype=np.float32)
        self._ids = np.zeros(capacity, dtype=np.int64)
        self._alive = np.zeros(capacity, dtype=bool)
        self._n = 0
        self._rows: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _grow(self, needed: int) -> None:
        cap = len(self._ids)
        if self._n + needed <= cap:
            return
        new_cap = max(cap * 2, self._n + needed)
        for name in ("_mat", "_ids", "_alive"):
            old = getattr(self, name)
            new = np.zeros((new_cap, *old.shape[1:]), dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def add(self, item_ids: np.ndarray, unit_vectors: np.ndarray) -> None:
        """Append rows (vectors already unit length); an item may own several rows."""
        count = len(item_ids)
        if count == 0:
            return
        self._grow(count)
        start = self._n
        self._mat[start : start + count] = unit_vectors
        self._ids[start : start + count] = item_ids
        self._alive[start : start + count] = True
        for offset, item_id in enumerate(item_ids.tolist()):
            self._rows.setdefault(item_id, []).append(start + offset)
        self._n += count

    def remove(self, item_id: int) -> None:
        rows = self._rows.pop(item_id, None)
        if rows:
            self._alive[rows] = False
            dead = self._n - int(self._alive[: self._n].sum())
            if dead > 64 and dead * 4 > self._n:
                self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        mat, ids = self._mat[keep].copy(), self._ids[keep].copy()
        self._n, self._rows = 0, {}
        self._alive[:] = False
        self.add(ids, mat)

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, cosine) of live rows; one row per vector, so an id may repeat."""
        n = self._n
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims = self._mat[:n] @ query
        if self._alive[:n].all():
            return self._ids[:n], sims
        alive = self._alive[:n]
        return self._ids[:n][alive], sims[alive]


def best_per_item(ids: np.ndarray, scores: np.ndarray, want: int) -> list[tuple[int, float]]:
    """The ``want`` best distinct items by their best-scoring vector, best first."""
    if len(ids) == 0 or want <= 0:
        return []
    take = min(len(ids), max(want * 2, want + 16))
    while True:
        if take < len(ids):
            top = np.argpartition(-scores, take - 1)[:take]
            top = top[np.argsort(-scores[top], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        out: dict[int, float] = {}
        for i in top.tolist():
            out.setdefault(int(ids[i]), float(scores[i]))
            if len(out) == want:
                return list(out.items())
        if take >= len(ids):
            return list(out.items())
        take = min(len(ids), take * 4)
