"""What every memshelf store backend shares: checking and embedding a batch.

A batch is checked and embedded in full before a backend touches its
database, so bad input (a non-JSON value, an oversized one, an embedder that
returns the wrong number of dimensions or fails) writes nothing. A batch that
only reads embeds its queries on a pool thread instead, while the backend runs
its keyword search (``QueryVectors``); the embedder's error is raised all the
same. Backends implement ``_execute`` (reads and writes for an embedded batch)
and ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import os
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Self, TypeVar

import numpy as np
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
)

from memshelf.embeddings import fingerprint as embedder_fingerprint
from memshelf.errors import (
    EmbeddingError,
    InvalidInputError,
    MemshelfError,
    StoreError,
    ValueTooLargeError,
)
from memshelf.namespaces import validate_namespace
from memshelf.stores import _query as q
from memshelf.stores.vectors import as_unit_matrix

DEFAULT_MAX_VALUE_BYTES = 256 * 1024
_QUERY_CACHE_SIZE = 512

Target = tuple[tuple[str, ...], str]
K = TypeVar("K")  # a backend's item id
R = TypeVar("R")  # a backend's stored row
X = TypeVar("X")  # one raw result of a backend's listing query


@dataclass
class Plan:
    """What a batch must embed before it touches the database."""

    puts: dict[Target, PutOp] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    owners: list[tuple[Target, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    blobs: dict[Target, str | None] = field(default_factory=dict)

    def rows_of(self) -> dict[Target, list[int]]:
        """For each put, the rows of ``texts`` (and of the embedded matrix) it owns."""
        rows: dict[Target, list[int]] = {}
        for row, owner in enumerate(self.owners):
            rows.setdefault(owner[0], []).append(row)
        return rows


def make_item(
    ns: str,
    key: str,
    value: str,
    created: float,
    updated: float,
    score: float | None = None,
    search: bool = False,
) -> Item:
    """An Item (or SearchItem) from stored columns: encoded namespace, JSON value, epoch times."""
    kwargs = {
        "namespace": q.decode_ns(ns),
        "key": key,
        "value": json.loads(value),
        "created_at": datetime.fromtimestamp(created, UTC),
        "updated_at": datetime.fromtimestamp(updated, UTC),
    }
    return SearchItem(**kwargs, score=score) if search else Item(**kwargs)


def search_page(
    op: SearchOp,
    ranked: Callable[[], Iterator[list[tuple[K, float]]]] | None,
    fetch: Callable[[list[K]], Mapping[K, R]],
    scan: Callable[[int, set[K]], Iterator[R]],
) -> list[tuple[R, float | None]]:
    """One page of a search: scored hits best first, then unscored items newest first.

    ``ranked`` yields chunks of (id, score); ``fetch`` loads the live rows that
    pass the filter; ``scan`` lists up to n more, skipping ids already ranked.
    """
    need = op.offset + op.limit
    if op.limit <= 0:
        return []
    rows: list[tuple[R, float | None]] = []
    seen: set[K] = set()
    if ranked is not None:
        for chunk in ranked():
            fetched = fetch([i for i, _ in chunk])
            for id_, score in chunk:
                seen.add(id_)
                row = fetched.get(id_)
                if row is not None:
                    rows.append((row, score))
            if len(rows) >= need:
                break
    if len(rows) < need:
        rows.extend((row, None) for row in scan(need - len(rows), seen))
    return rows[op.offset : need]


def scan_pages(
    fetch_page: Callable[[int, int], list[X]],
    accept: Callable[[X], R | None],
    want: int,
    filtered: bool,
) -> Iterator[R]:
    """Up to ``want`` accepted rows of a listing query, read a page at a time."""
    page = max(want, 64) if filtered else want
    offset, produced = 0, 0
    while produced < want:
        batch = fetch_page(offset, page)
        for raw in batch:
            row = accept(raw)
            if row is None:
                continue
            yield row
            produced += 1
            if produced >= want:
                return
        if len(batch) < page:
            return
        offset += page


def best_first_chunks(scores: Mapping[K, float], size: int) -> Iterator[list[tuple[K, float]]]:
    """Scores sorted best first, in chunks (keyword-only ranking)."""
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _check_unicode(op: PutOp) -> None:
    """A key or namespace label every backend can store as UTF-8, or a clear error."""
    for what, text in (("key", op.key), *(("namespace label", n) for n in op.namespace)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"The {what} {text!r} holds a lone surrogate ({text[exc.start]!r}, left by a "
                "bad decode), which is not Unicode and cannot be stored as UTF-8; clean it "
                "first (e.g. text.encode('utf-8', 'replace').decode()). Nothing was written."
            ) from exc


class QueryVectors(dict[str, np.ndarray]):
    """A batch's query vectors, some perhaps still being embedded on another thread.

    A batch that only reads starts embedding its new queries and goes on to the
    backend at once; the backend asks for a search's vector (``get`` waits for it)
    after its keyword search, so a search costs the slower of the two, not their sum.
    """

    def __init__(
        self,
        ready: Mapping[str, np.ndarray],
        pending: Future[dict[str, np.ndarray]] | None = None,
    ) -> None:
        super().__init__(ready)
        self._pending = pending

    def get(self, text: str, default: Any = None) -> Any:
        self.wait()
        return super().get(text, default)

    @property
    def ready(self) -> bool:
        """Whether ``get`` would return without waiting for the embedder."""
        return self._pending is None or self._pending.done()

    def wait(self) -> None:
        """Block until every vector is here; raises the embedder's error, if it failed."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.update(pending.result())


@cache
def _query_pool(pid: int) -> ThreadPoolExecutor:
    """Threads that embed read batches' queries; one pool per process (a forked child
    must not wait on its parent's threads)."""
    # Threads start on demand; a small cap would queue searches behind other users'
    # embeddings (the embedder, not this pool, decides how many run at once).
    return ThreadPoolExecutor(max_workers=64, thread_name_prefix=f"memshelf-query-{pid}")


def embed_queries(embeddings: Embeddings, texts: list[str]) -> list[list[float]]:
    """Vectors for several queries: one call to the embedder's ``embed_queries`` when it
    has one (the local model runs two short queries in one ONNX call for about the price
    of one), else ``embed_query`` per text. An ``embed_queries`` must give each text the
    very vector ``embed_query`` gives it: a search's hits must not depend on its batch."""
    many = getattr(embeddings, "embed_queries", None)
    if len(texts) > 1 and callable(many):
        return list(many(texts))
    return [embeddings.embed_query(t) for t in texts]


@contextlib.contextmanager
def embedder_errors(embeddings: Embeddings) -> Iterator[None]:
    """Report an embedder's failure (a network error is an OSError) as an EmbeddingError
    naming the embedder, never as the store file's or Redis's error."""
    try:
        yield
    except MemshelfError:
        raise
    except Exception as exc:
        raise EmbeddingError(
            f"The embedder ({type(embeddings).__name__}) failed: {type(exc).__name__}: "
            f"{str(exc).rstrip('.')}. "
            "Check that it is reachable, or set MEMSHELF_EMBEDDINGS to another one "
            "(the default is the local model). Nothing was written."
        ) from exc


def check_ttl(ttl: Any) -> None:
    if ttl is not None and (not isinstance(ttl, int | float) or ttl <= 0 or math.isnan(ttl)):
        raise StoreError(f"ttl must be a positive number of minutes or None, got {ttl!r}.")


class MemshelfStore(BaseStore):
    """A LangGraph store with memshelf's index, TTL, limits and hybrid scoring."""

    supports_ttl = True

    def __init__(
        self,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        keyword_weight: float = q.DEFAULT_KEYWORD_WEIGHT,
        embedder_id: str | None = None,
    ) -> None:
        self.ttl_config = dict(ttl) if ttl else None  # type: ignore[assignment]
        self.max_value_bytes = max_value_bytes
        if not 0.0 <= keyword_weight <= 1.0:
            raise MemshelfError(f"keyword_weight must be within [0, 1], got {keyword_weight}.")
        self.keyword_weight = keyword_weight
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings: Embeddings | None = None
        self.dims = 0
        self.embedder_id: str | None = None
        if index:
            if "embed" not in index or "dims" not in index:
                raise MemshelfError(
                    "index needs both 'embed' and 'dims', e.g. "
                    "{'embed': embedder, 'dims': 384, 'fields': ['text']}."
                )
            self.embeddings = ensure_embeddings(index["embed"])
            self.dims = int(index["dims"])
            self.embedder_id = embedder_id or embedder_fingerprint(index["embed"], self.dims)
        self._fields = q.tokenized_fields((index or {}).get("fields") or ["$"])
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the connection; later calls raise StoreError. Safe to call twice."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._disconnect()

    @abstractmethod
    def _disconnect(self) -> None: ...

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("This store is closed; open a new one with memshelf.open_store().")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def meta(self, key: str) -> str | None:
        """A stored bookkeeping value (``embedder``, ``schema`` …) or None."""

    @abstractmethod
    def sweep_ttl(self) -> int:
        """Delete expired items now; returns how many."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts for `memshelf doctor`."""

    def clear_query_cache(self) -> None:
        """Drop cached query vectors (keyed by query text: users' own words)."""
        with self._cache_lock:
            self._query_cache.clear()

    @abstractmethod
    def scrub(self) -> None:
        """Make deleted data unrecoverable from the backend's files, after a forget."""

    @abstractmethod
    def reembed(self, batch_size: int = 256) -> int:
        """Re-embed every indexed item with the configured embedder; returns how many.

        An embedder error changes nothing; an item written or deleted while the
        embedder ran keeps what that write left (its own put used this embedder)."""

    # ----------------------------------------------------------------- batching
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        vectors = self._embed_texts(plan.texts)
        queries = self._query_vectors(plan)
        results = self._execute(ops, plan, vectors, queries)
        queries.wait()  # an embedder's error is raised even when no search needed its vector
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        vectors = None
        if plan.texts and self.embeddings is not None:
            with embedder_errors(self.embeddings):
                documents = await self.embeddings.aembed_documents(plan.texts)
            vectors = as_unit_matrix(documents, self.dims)
        queries, missing = self._cached_queries(plan.queries)
        if missing and self.embeddings is not None:
            embeddings = self.embeddings
            with embedder_errors(embeddings):
                new = await asyncio.gather(*(embeddings.aembed_query(t) for t in missing))
            queries.update(self._remember_queries(missing, new))
        return await asyncio.to_thread(self._execute, ops, plan, vectors, queries)

    @abstractmethod
    def _execute(
        self,
        ops: list[Op],
        plan: Plan,
        vectors: np.ndarray | None,
        queries: dict[str, np.ndarray],
    ) -> list[Result]:
        """Run an embedded batch: results in op order, puts applied atomically."""

    def _plan(self, ops: list[Op]) -> Plan:
        plan = Plan()
        for op in ops:
            if isinstance(op, PutOp):
                q.encode_ns(op.namespace)
                _check_unicode(op)
                if op.value is not None and not isinstance(op.value, dict):
                    raise StoreError(
                        f"Values must be dicts (JSON objects), got {type(op.value).__name__}."
                    )
                if op.value is not None:
                    check_ttl(op.ttl)
                plan.puts[(op.namespace, op.key)] = op
                plan.blobs[(op.namespace, op.key)] = self._encode_value(op)
            elif isinstance(op, GetOp):
                q.encode_ns(op.namespace)
            elif isinstance(op, SearchOp):
                if op.namespace_prefix:
                    q.encode_ns(op.namespace_prefix)
                if op.query and self.embeddings is not None:
                    plan.queries.append(op.query)
            elif isinstance(op, ListNamespacesOp):
                for condition in op.match_conditions or ():
                    validate_namespace(tuple(condition.path))
            else:
                raise StoreError(f"Unknown operation type: {type(op).__name__}")
        for target, op in plan.puts.items():
            if op.value is None:
                continue
            for path, text in q.texts_to_index(op.value, op.index, self._fields):
                plan.owners.append((target, path))
                plan.texts.append(text)
        return plan

    def _encode_value(self, op: PutOp) -> str | None:
        """The value as compact JSON, checked before anything is embedded or written."""
        if op.value is None:
            return None
        try:
            blob = json.dumps(op.value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"The value for key {op.key!r} is not JSON-serialisable ({exc}); "
                "store plain dicts, lists, strings, numbers and booleans."
            ) from exc
        try:
            size = len(blob.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"The value for key {op.key!r} holds a lone surrogate ({exc.object[exc.start]!r}, "
                "left by a bad decode), which is not Unicode and cannot be stored as UTF-8; "
                "clean the text first (e.g. text.encode('utf-8', 'replace').decode()). "
                "Nothing was written."
            ) from exc
        if size > self.max_value_bytes:
            raise ValueTooLargeError(
                f"The value for key {op.key!r} is {size:,} bytes; the limit is "
                f"{self.max_value_bytes:,}. Store a distilled fact rather than a "
                "transcript, or raise MEMSHELF_MAX_VALUE_BYTES. Nothing was written."
            )
        return blob

    def _embed_texts(self, texts: list[str]) -> np.ndarray | None:
        if not texts or self.embeddings is None:
            return None
        with embedder_errors(self.embeddings):
            documents = self.embeddings.embed_documents(texts)
        return as_unit_matrix(documents, self.dims)

    def _embed_all(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit vectors for ``texts`` in batches (for re-embedding a whole store)."""
        assert self.embeddings is not None
        with embedder_errors(self.embeddings):
            parts = [
                as_unit_matrix(
                    self.embeddings.embed_documents(texts[i : i + batch_size]), self.dims
                )
                for i in range(0, len(texts), batch_size)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, self.dims), np.float32)

    def _cached_queries(self, texts: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
        """Query vectors already known, and the distinct queries still to embed."""
        if not texts or self.embeddings is None:
            return {}, []
        with self._cache_lock:
            found = {t: self._query_cache[t] for t in texts if t in self._query_cache}
            for text in found:
                self._query_cache.move_to_end(text)
        return found, [t for t in dict.fromkeys(texts) if t not in found]

    def _remember_queries(
        self, texts: list[str], vectors: list[list[float]]
    ) -> dict[str, np.ndarray]:
        """Checked, unit-length vectors for ``texts``, kept in a small LRU (thread-safe)."""
        new = dict(zip(texts, as_unit_matrix(vectors, self.dims), strict=True))
        with self._cache_lock:
            self._query_cache.update(new)
            while len(self._query_cache) > _QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return new

    def _query_vectors(self, plan: Plan) -> QueryVectors:
        """The batch's query vectors: embedded on a pool thread, overlapping the backend's
        keyword search, when the batch only reads; before anything else when it writes,
        so an embedder error writes nothing."""
        found, missing = self._cached_queries(plan.queries)
        embeddings = self.embeddings
        if not missing or embeddings is None:
            return QueryVectors(found)

        def embed() -> dict[str, np.ndarray]:
            with embedder_errors(embeddings):
                new = embed_queries(embeddings, missing)
            return self._remember_queries(missing, new)

        if plan.puts:
            return QueryVectors({**found, **embed()})
        context = contextvars.copy_context()  # the caller's tracing and callbacks go along
        return QueryVectors(found, _query_pool(os.getpid()).submit(context.run, embed))

    def _scored(self, op: SearchOp) -> bool:
        """Whether a search ranks by score: a query, and an embedder or keyword weight."""
        return bool(op.query) and (self.embeddings is not None or self.keyword_weight > 0)

    def _refreshes(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return bool((self.ttl_config or {}).get("refresh_on_read", True))
