"""In-process vector search over one namespace's vectors: exact, or through an HNSW index.

The database row is the truth; a :class:`VectorBlock` is a cache of one
namespace's vectors as a contiguous float32 matrix, so an exact search is one
BLAS matrix-vector product. Writes patch the block in place (append, tombstone),
and a block compacts itself once a quarter of its rows are dead.

A block with many rows also keeps an approximate index (``ann.py``): it
proposes candidates, which are rescored exactly from the matrix, and every
candidate is checked against the live rows, so a deleted vector is never
returned even if the index still held it. Every add and remove reaches the
index too, so it stays in step with the matrix without being rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from memshelf.errors import EmbeddingDimensionError
from memshelf.stores.ann import AnnConfig, AnnIndex, PendingBuild


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
    """The vectors of one namespace: rows of (item id, unit vector), maybe with an index."""

    __slots__ = (
        "_alive",
        "_ann",
        "_build",
        "_dead",
        "_failed",
        "_ids",
        "_mat",
        "_n",
        "_next_vid",
        "_rows",
        "_vids",
        "dims",
    )

    def __init__(self, dims: int, capacity: int = 64) -> None:
        self.dims = dims
        self._mat = np.zeros((capacity, dims), dtype=np.float32)
        self._ids = np.zeros(capacity, dtype=np.int64)
        self._alive = np.zeros(capacity, dtype=bool)
        # Vector ids: increasing with the row number, never reused; the index's keys.
        self._vids = np.zeros(capacity, dtype=np.int64)
        self._n = self._dead = self._next_vid = 0
        self._rows: dict[int, list[int]] = {}
        self._ann: AnnIndex | None = None
        self._build: PendingBuild | None = None
        self._failed = False

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def live_rows(self) -> int:
        return self._n - self._dead

    @property
    def nbytes(self) -> int:
        """Memory held, about: the arrays (by capacity) and the approximate index."""
        arrays = self._mat.nbytes + self._ids.nbytes + self._alive.nbytes + self._vids.nbytes
        return arrays + (self._ann.nbytes if self._ann is not None else 0)

    def _grow(self, needed: int) -> None:
        cap = len(self._ids)
        if self._n + needed <= cap:
            return
        new_cap = max(cap * 2, self._n + needed)
        for name in ("_mat", "_ids", "_alive", "_vids"):
            old = getattr(self, name)
            new = np.zeros((new_cap, *old.shape[1:]), dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def _append(self, item_ids: np.ndarray, unit_vectors: np.ndarray, vids: np.ndarray) -> None:
        count = len(item_ids)
        self._grow(count)
        start, end = self._n, self._n + count
        self._mat[start:end] = unit_vectors
        self._ids[start:end] = item_ids
        self._alive[start:end] = True
        self._vids[start:end] = vids
        for offset, item_id in enumerate(item_ids.tolist()):
            self._rows.setdefault(item_id, []).append(start + offset)
        self._n = end

    def add(self, item_ids: np.ndarray, unit_vectors: np.ndarray) -> None:
        """Append rows (vectors already unit length); an item may own several rows."""
        count = len(item_ids)
        if count == 0:
            return
        vids = np.arange(self._next_vid, self._next_vid + count, dtype=np.int64)
        self._next_vid += count
        self._append(item_ids, unit_vectors, vids)
        if self._ann is not None:
            self._ann.add(vids, unit_vectors)

    def remove(self, item_id: int) -> None:
        rows = self._rows.pop(item_id, None)
        if rows:
            self._alive[rows] = False
            self._dead += len(rows)
            if self._ann is not None:
                self._ann.remove(self._vids[rows])
            if self._dead > 64 and self._dead * 4 > self._n:
                self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        parts = [a[keep].copy() for a in (self._ids, self._mat, self._vids)]
        self._n = self._dead = 0
        self._rows = {}
        self._alive[:] = False
        self._append(*parts)  # same order, so vector ids stay sorted by row

    def scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, cosine) of live rows; one row per vector, so an id may repeat."""
        n = self._n
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sims = self._mat[:n] @ query
        if self._dead == 0:
            return self._ids[:n], sims
        alive = self._alive[:n]
        return self._ids[:n][alive], sims[alive]

    # ----------------------------------------------------------------- the index
    def indexed(self, config: AnnConfig) -> bool:
        """Whether searches should go through the index; starts or adopts its build.

        A background build is adopted by a later call, never by the one that started it,
        so what happens between the two is always caught up the same way."""
        if config.min_rows is None or self.live_rows < config.min_rows:
            return False
        if self._ann is None and not self._failed:
            if self._build is None:
                alive = self._alive[: self._n]
                background = self.live_rows >= config.sync_build_rows
                self._build = PendingBuild(
                    self.dims,
                    config,
                    self._vids[: self._n][alive].copy(),
                    self._mat[: self._n][alive],  # a copy: fancy indexing
                    self._next_vid,
                    background=background,
                )
                if background:
                    return False
            if self._build.ready():
                self._adopt(self._build)
        return self._ann is not None

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Block until a pending background build ends (tests, benchmarks)."""
        build = self._build
        return build.wait(timeout) if build is not None else self._ann is not None

    def _adopt(self, build: PendingBuild) -> None:
        """Take a finished build, caught up with the rows added and removed since its snapshot."""
        self._build = None
        if build.index is None:
            self._failed = True  # logged by the build; this block stays exact
            return
        n = self._n
        live = self._vids[:n][self._alive[:n]]
        build.index.remove(np.setdiff1d(build.vids, live, assume_unique=True))
        newer = np.flatnonzero(self._alive[:n] & (self._vids[:n] >= build.upto))
        build.index.add(self._vids[newer], self._mat[newer])
        self._ann = build.index

    def candidates(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, exact cosine) of about ``count`` nearest live rows, from the index."""
        assert self._ann is not None, "candidates() needs indexed() to be true"
        vids = self._ann.search(query, count)
        n = self._n
        rows = np.searchsorted(self._vids[:n], vids)
        inside = rows < n
        rows, vids = rows[inside], vids[inside]
        rows = rows[(self._vids[rows] == vids) & self._alive[rows]]
        return self._ids[rows], self._mat[rows] @ query

    def item_scores(
        self, item_ids: Iterable[int], query: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, exact cosine) of every live row of the given items (keyword hits)."""
        rows = [r for i in item_ids for r in self._rows.get(i, ())]
        picked = np.asarray(rows, dtype=np.int64)
        return self._ids[picked], self._mat[picked] @ query


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


def _fuse(
    ids: np.ndarray, dense: np.ndarray, kw_ids: np.ndarray, kw_val: np.ndarray, weight: float
) -> np.ndarray:
    """``(1 - w)·cosine + w·keyword``; ``kw_ids`` sorted, items without a hit get 0."""
    if len(kw_ids) == 0:
        return dense
    bonus = np.zeros(len(ids), dtype=np.float32)
    pos = np.clip(np.searchsorted(kw_ids, ids), 0, len(kw_ids) - 1)
    hit = kw_ids[pos] == ids
    bonus[hit] = kw_val[pos[hit]]
    fused: np.ndarray = (1.0 - weight) * dense + weight * bonus
    return fused


def rank_blocks(
    blocks: list[VectorBlock],
    query: np.ndarray,
    keyword: dict[int, float],
    weight: float,
    config: AnnConfig,
    want: int,
) -> Iterator[list[tuple[int, float]]]:
    """Chunks of (item id, fused score) over the blocks' live vectors, best first.

    A block searched through its index gives the index's candidates and its
    keyword hits, scored exactly; when they run short, the pool grows (up to an
    exact scan, once the pool would be an eighth of the block). No item is
    yielded twice, so a later, wider pool only adds to what came before.
    """
    kw_ids = np.fromiter(keyword, dtype=np.int64, count=len(keyword))
    kw_val = np.fromiter(keyword.values(), dtype=np.float32, count=len(keyword))
    order = np.argsort(kw_ids)
    kw_ids, kw_val = kw_ids[order], kw_val[order]
    exact: list[tuple[np.ndarray, np.ndarray]] = []
    approx: list[VectorBlock] = []
    for block in blocks:
        if block.indexed(config):
            approx.append(block)
        else:
            exact.append(block.scores(query))
    sent: set[int] = set()
    while True:
        pool = 2 * want
        for block in [b for b in approx if pool * 8 >= b.live_rows]:
            approx.remove(block)
            exact.append(block.scores(query))
        parts = list(exact)
        for block in approx:
            parts.append(block.candidates(query, pool))
            if keyword:
                parts.append(block.item_scores(keyword, query))
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        dense = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
        best = best_per_item(ids, _fuse(ids, dense, kw_ids, kw_val, weight), want)
        fresh = [hit for hit in best if hit[0] not in sent]
        if fresh:
            sent.update(item for item, _ in fresh)
            yield fresh
        if len(best) < want and not approx:
            return
        want *= 4
