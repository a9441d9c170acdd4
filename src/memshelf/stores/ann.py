"""An approximate nearest-neighbour index for big namespaces (HNSW, via hnswlib).

Below :attr:`AnnConfig.min_rows` vectors a namespace is searched exactly (one
matrix-vector product is faster than any index there); above it, an HNSW graph
proposes candidates and the caller rescores them exactly from its float32
matrix, so scores stay exact and only the candidate set is approximate.

The graph is keyed by *vector ids*: numbers a :class:`~memshelf.stores.vectors.
VectorBlock` gives each row it stores and never reuses, so rows can move
(compaction) without touching the graph. A graph over many rows takes seconds
to build, so :class:`PendingBuild` builds it in a background thread from a
snapshot (searches stay exact until it is ready) and the block catches it up
with whatever changed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from memshelf.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_MIN_ROWS = 10_000


@dataclass(frozen=True)
class AnnConfig:
    """When and how a namespace gets an approximate index.

    ``min_rows``: vectors in a namespace from which searches use the index
    (``None`` turns indexes off). ``sync_build_rows``: below this many, the index
    is built in the search that needs it; above, in the background.
    ``min_recall``: each new index is checked on a sample of its own vectors
    (recall@10 against the exact scan); the search breadth is doubled up to 8x
    until the sample reaches it, else the namespace stays exact, so data an HNSW
    graph serves badly (near-random vectors) costs speed, never answers.
    The graph parameters were chosen by ``benchmarks/ann_bench.py``.
    """

    min_rows: int | None = DEFAULT_MIN_ROWS
    sync_build_rows: int = 2_000
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    build_threads: int = 1
    min_recall: float = 0.98

    def __post_init__(self) -> None:
        if self.min_rows is not None and self.min_rows < 1:
            raise ConfigurationError(
                f"AnnConfig.min_rows must be a positive number of vectors or None (no index), "
                f"got {self.min_rows!r}."
            )
        if self.connectivity < 2 or self.expansion_add < 1 or self.expansion_search < 1:
            raise ConfigurationError(
                "AnnConfig.connectivity must be at least 2 and expansion_add / "
                f"expansion_search at least 1, got {self.connectivity}, {self.expansion_add}, "
                f"{self.expansion_search}."
            )
        if not 0.0 < self.min_recall <= 1.0:
            raise ConfigurationError(
                f"AnnConfig.min_recall must be in (0, 1], got {self.min_recall!r}."
            )


class AnnIndex:
    """An HNSW graph over unit vectors (inner product), keyed by vector id.

    Removed vectors are marked deleted (searches skip them) and their slots are
    reused by later adds, so churn does not grow the graph.
    """

    def __init__(self, dims: int, config: AnnConfig, capacity: int = 1024) -> None:
        import hnswlib

        self.config = config
        self._index = hnswlib.Index(space="ip", dim=dims)
        self._index.init_index(
            max_elements=max(capacity, 1024),
            ef_construction=config.expansion_add,
            M=config.connectivity,
            allow_replace_deleted=True,
        )
        self._index.set_num_threads(1)
        self._deleted = 0
        self.breadth = config.expansion_search  # raised by calibrate()

    def __len__(self) -> int:
        return int(self._index.element_count) - self._deleted

    @property
    def nbytes(self) -> int:
        """Memory the graph holds, about: each slot's vector, level-0 links and label."""
        per_slot = 4 * int(self._index.dim) + 8 * int(self._index.M) + 16
        return int(self._index.max_elements) * per_slot

    def add(self, vids: np.ndarray, vectors: np.ndarray, threads: int = 1) -> None:
        if not len(vids):
            return
        reused = min(self._deleted, len(vids))
        need = int(self._index.element_count) + len(vids) - reused
        if need > self._index.max_elements:
            self._index.resize_index(max(need, 2 * self._index.max_elements))
        self._index.add_items(vectors, vids, num_threads=threads, replace_deleted=True)
        self._deleted -= reused

    def remove(self, vids: np.ndarray) -> None:
        for vid in vids.tolist():
            try:
                self._index.mark_deleted(vid)
            except RuntimeError:  # not in the graph (never added or already removed)
                continue
            self._deleted += 1

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Vector ids of about the ``count`` nearest vectors, nearest first."""
        count = min(count, len(self))
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        self._index.set_ef(max(self.breadth, count))
        try:
            labels, _ = self._index.knn_query(query, k=count, num_threads=1)
        except RuntimeError:  # fewer reachable live vectors than asked: the caller widens
            return np.zeros(0, dtype=np.int64)
        found: np.ndarray = labels[0].astype(np.int64)
        return found


class PendingBuild:
    """An index being built from a snapshot of (vector ids, vectors) in a background thread.

    ``upto`` is the first vector id the snapshot does not hold: rows added later,
    and rows removed since, are caught up by the block when it adopts the index.
    """

    def __init__(
        self,
        dims: int,
        config: AnnConfig,
        vids: np.ndarray,
        vectors: np.ndarray,
        upto: int,
        background: bool,
    ) -> None:
        self.dims, self.config = dims, config
        self.vids, self.upto = vids, upto
        self.index: AnnIndex | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.recall = 0.0  # on the calibration sample, at the breadth chosen
        self._vectors = vectors  # dropped once built: the snapshot is a copy
        self._done = threading.Event()
        if background:
            threading.Thread(target=self._run, name="memshelf-ann-build", daemon=True).start()
        else:
            self._run()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            index = AnnIndex(self.dims, self.config, capacity=len(self.vids) + 1024)
            index.add(self.vids, self._vectors, threads=self.config.build_threads)
            self.recall = calibrate(index, self.vids, self._vectors)
            if self.recall >= self.config.min_recall:
                self.index = index
            else:
                log.info(
                    "memshelf: the vector index reached recall@10 %.3f < %.2f on %d vectors; "
                    "this namespace stays exact",
                    self.recall,
                    self.config.min_recall,
                    len(self.vids),
                )
        except Exception as exc:  # the block stays exact and says why
            self.error = exc
            log.warning(
                "memshelf: building the vector index failed (%s: %s); searches stay exact",
                type(exc).__name__,
                exc,
            )
        finally:
            self._vectors = np.zeros((0, self.dims), dtype=np.float32)
            self.seconds = time.perf_counter() - start
            self._done.set()

    def ready(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


CALIBRATION_QUERIES = 64
CALIBRATION_POOL = 64


def calibrate(index: AnnIndex, vids: np.ndarray, vectors: np.ndarray) -> float:
    """Recall@10 of ``index`` against the exact scan, for a sample of its own vectors used
    as queries (each one's own row left out), at the smallest breadth (1x to 8x the
    configured one) that reaches ``min_recall``; sets that breadth on the index."""
    count = len(vids)
    if count <= 11:
        return 1.0
    rng = np.random.default_rng(count)
    picks = rng.choice(count, size=min(CALIBRATION_QUERIES, count), replace=False)
    queries = vectors[picks]
    sims = queries @ vectors.T
    sims[np.arange(len(picks)), picks] = -np.inf
    truth = np.argpartition(-sims, 9, axis=1)[:, :10]
    recall = 0.0
    for factor in (1, 2, 4, 8):
        index.breadth = index.config.expansion_search * factor
        hits = 0
        for row, query in enumerate(queries):
            found = np.searchsorted(vids, index.search(query, CALIBRATION_POOL + 1))
            found = found[(found < count) & (found != picks[row])]
            best = found[np.argsort(-sims[row, found])[:10]]
            hits += len(np.intersect1d(best, truth[row]))
        recall = hits / (10 * len(picks))
        if recall >= index.config.min_recall:
            break
    return recall
