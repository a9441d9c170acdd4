"""memshelf's production store: a LangGraph ``BaseStore`` on Redis with the query engine.

Layout under a key prefix ``P`` (default ``memshelf``)::

    P:meta        HASH  schema version, embedder fingerprint, vector dims
    P:i:<id>      HASH  one item: ns, key, value (JSON), created, updated, ttl,
                        nvec, spec, nsp (TAG), text (TEXT, what keyword search sees),
                        fv (TAG, its value's leaves, for filters: ``_redis_filter.py``)
    P:v:<id>:<n>  HASH  the n-th vector of item <id>: nsp and fv (TAG), item, vec (FLOAT32)
    P:names …     ZSET  the namespace registry (``_redis_names.py``)

``<id>`` is a hash of (namespace, key). Namespaces reach the query engine only
as opaque hex tokens, one per prefix (``nsp``), so no user id is ever parsed
as query syntax and a prefix search is an exact TAG match. Two indexes,
``P:items`` and ``P:vectors``, are created (or left alone) by :meth:`setup`,
which also upgrades data written by an older schema in place. Filters narrow
every query on the server (``fv`` tags, re-checked in Python); namespaces are
listed from the registry, kept by the same transaction as the items.

Expiry is Redis's own: an item and its vectors carry the same PEXPIRE, and a
refresh re-arms it with the item's own TTL. Every read loads the item's hash,
and Redis never returns an expired key, so an expired item is hidden before
Redis reclaims it. Ranking (dense + keyword fusion) is the SQLite store's,
from ``_query.py``: exact over the KNN candidates plus the keyword hits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from langgraph.store.base import (
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)

from memshelf.config import display_url, redact
from memshelf.errors import (
    ConfigurationError,
    EmbedderMismatchError,
    EmbeddingError,
    MemshelfError,
    StoreError,
)
from memshelf.stores import _query as q
from memshelf.stores._redis_client import (
    DEFAULT_SOCKET_TIMEOUT_S,
    connect,
    drop_prefix,
    key_batches,
    password_args,
)
from memshelf.stores._redis_filter import filter_clause, value_tokens
from memshelf.stores._redis_keyword import keyword_hits
from memshelf.stores._redis_names import Registry
from memshelf.stores.base import (
    DEFAULT_MAX_VALUE_BYTES,
    MemshelfStore,
    Plan,
    best_first_chunks,
    make_item,
    scan_pages,
    search_page,
)

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# 2: the fv tags and the namespace registry (1 -> 2 is upgraded on open: _upgrade_from_1)
SCHEMA_VERSION = 2
_PAGE = 500
_SCAN_PAGE = 4096  # a filtered listing's pages grow up to this (one sort per page)
_FIELDS = (b"ns", b"key", b"value", b"created", b"updated", b"ttl", b"nvec", b"spec")
_PREFIX_OK = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
VECTOR_ALGORITHMS = ("FLAT", "HNSW")
# What the query engine sees of an item: prefix tokens, keyword text, recency, vector
# count, value tags.
_ITEMS_SCHEMA = (
    "nsp TAG text TEXT NOSTEM updated NUMERIC SORTABLE nvec NUMERIC fv TAG".split()
)  # fmt: skip
# reembed's swap of one batch: KEYS are item keys; ARGV is the vector key prefix, then per
# item its id, its stamp when embedded (see _stamp), n and n vectors. An item that is gone or
# was rewritten since is left alone; new vectors take the item's remaining TTL.
_SWAP_VECTORS = """
local vprefix, a, done = ARGV[1], 2, 0
for _, key in ipairs(KEYS) do
  local id, stamp, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local f = redis.call('HMGET', key, 'updated', 'value', 'spec', 'nvec', 'nsp', 'fv')
  if f[1] and f[2] and redis.sha1hex(f[1] .. '\\n' .. f[2] .. '\\n' .. (f[3] or '')) == stamp then
    local old, ttl = tonumber(f[4]) or 0, redis.call('PTTL', key)
    for i = n, old - 1 do redis.call('UNLINK', vprefix .. id .. ':' .. i) end
    for i = 0, n - 1 do
      local vkey = vprefix .. id .. ':' .. i
      redis.call('HSET', vkey, 'nsp', f[5] or '', 'item', id, 'vec', ARGV[a + 3 + i])
      if f[6] then redis.call('HSET', vkey, 'fv', f[6]) end
      if ttl > 0 then redis.call('PEXPIRE', vkey, ttl) else redis.call('PERSIST', vkey) end
    end
    if old ~= n then redis.call('HSET', key, 'nvec', n) end
    if n > 0 then done = done + 1 end
  end
  a = a + 3 + n
end
return done
"""


def _s(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _stamp(fields: dict[bytes, bytes]) -> str:
    """What identifies an item's stored version (every put sets a new ``updated``)."""
    parts = (fields.get(b"updated") or b"", fields[b"value"], fields.get(b"spec") or b"")
    return hashlib.sha1(b"\n".join(parts), usedforsecurity=False).hexdigest()


def item_id(namespace: tuple[str, ...], key: str) -> str:
    """A fixed-length key part for (namespace, key); the length prefix keeps it injective."""
    ns = q.encode_ns(namespace)
    raw = f"{len(ns)}:{ns}{key}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


class ReembedUnfinishedError(EmbedderMismatchError):
    """A reembed stopped part-way: the store holds vectors of two embedders."""

    def __init__(self, stored: str, target: str, where: str) -> None:
        self.stored, self.configured = stored, target
        EmbeddingError.__init__(
            self,
            f"A `memshelf reembed` of the store at {where} from embedder {stored!r} to "
            f"{target!r} stopped part-way: its vectors now come from both, and a search "
            "would compare them. Run `memshelf reembed` again (with the embedder you want "
            "configured): it re-embeds every item and finishes the switch.",
        )


# Items whose TTL a read re-arms: id -> (TTL in minutes, vector count, namespace).
_Refresh = dict[str, tuple[float, int, tuple[str, ...]]]


class _Row:
    """One item's stored fields, as loaded from its hash."""

    __slots__ = ("fields", "id")

    def __init__(self, id_: str, fields: dict[bytes, bytes]) -> None:
        self.id = id_
        self.fields = fields

    @property
    def ttl(self) -> float | None:
        raw = self.fields.get(b"ttl") or b""
        return float(raw) if raw else None

    @property
    def nvec(self) -> int:
        return int(self.fields.get(b"nvec") or 0)

    @property
    def value(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.fields[b"value"])
        return loaded

    def item(self, score: float | None = None, search: bool = False) -> Item:
        f = self.fields
        return make_item(
            _s(f[b"ns"]),
            _s(f[b"key"]),
            _s(f[b"value"]),
            float(f[b"created"]),
            float(f[b"updated"]),
            score,
            search,
        )


class RedisStore(MemshelfStore):
    """A LangGraph store in Redis 8 / Redis Stack: shared by every process and machine."""

    def __init__(
        self,
        url: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        keyword_weight: float = q.DEFAULT_KEYWORD_WEIGHT,
        embedder_id: str | None = None,
        verify_embedder: bool = True,
        prefix: str = "memshelf",
        password: str | None = None,
        vector_algorithm: str = "FLAT",
        client: redis.Redis | None = None,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> None:
        super().__init__(
            index=index,
            ttl=ttl,
            max_value_bytes=max_value_bytes,
            keyword_weight=keyword_weight,
            embedder_id=embedder_id,
        )
        if not _PREFIX_OK.match(prefix):
            raise ConfigurationError(
                f"Redis key prefix {prefix!r} must be 1-64 characters of [A-Za-z0-9_-]."
            )
        if vector_algorithm.upper() not in VECTOR_ALGORITHMS:
            raise ConfigurationError(
                f"vector_algorithm must be FLAT (exact) or HNSW (approximate), "
                f"got {vector_algorithm!r}."
            )
        self.url = url
        self.prefix = prefix
        self.vector_algorithm = vector_algorithm.upper()
        self._items_index = f"{prefix}:items"
        self._vectors_index = f"{prefix}:vectors"
        self._meta_key = f"{prefix}:meta"
        self._r = client if client is not None else connect(url, password, socket_timeout)
        self._names = Registry(self._r, prefix)
        log.info("memshelf Redis store at %s (URL hash), prefix %r", redact(url), prefix)
        self.setup(verify_embedder)

    # ----------------------------------------------------------------- lifecycle
    def setup(self, verify_embedder: bool = True) -> None:
        """Create the indexes if missing and record the embedder; safe to call again."""
        r = self._r
        meta = {_s(k): _s(v) for k, v in r.hgetall(self._meta_key).items()}
        schema = int(meta.get("schema", "0"))
        if schema > SCHEMA_VERSION:
            raise StoreError(
                f"The Redis data under prefix {self.prefix!r} was written by a newer memshelf "
                f"(schema {schema} > {SCHEMA_VERSION}). Upgrade memshelf: pip install -U memshelf."
            )
        self._create_index(self._items_index, f"{self.prefix}:i:", list(_ITEMS_SCHEMA))
        if schema == 1:
            self._upgrade_from_1()
        if self.embedder_id:
            self._claim_embedder(meta, verify_embedder)
        r.hset(self._meta_key, "schema", str(SCHEMA_VERSION))

    def _vector_schema(self) -> list[Any]:
        params = ["TYPE", "FLOAT32", "DIM", self.dims, "DISTANCE_METRIC", "COSINE"]
        return [
            "nsp", "TAG", "fv", "TAG", "vec", "VECTOR", self.vector_algorithm, len(params), *params,
        ]  # fmt: skip

    def _upgrade_from_1(self) -> None:
        """Schema 1 -> 2 in place: tag every item (and its vectors) with its ``fv`` tags and
        fill the namespace registry. Safe to run twice or in two processes at once; writes
        made meanwhile by this version keep what they wrote. A process still running an
        older memshelf would write items without tags: upgrade every process together."""
        import redis

        started = time.perf_counter()
        for index in (self._items_index, self._vectors_index):
            try:
                self._cmd("FT.ALTER", index, "SCHEMA", "ADD", "fv", "TAG")
            except redis.ResponseError as exc:
                text = str(exc).lower()
                if "duplicate" not in text and "unknown index" not in text:
                    raise
        done = 0
        for keys in key_batches(self._r, f"{self.prefix}:i:*", 500):
            rows = []
            for id_, row in self._load([self._id_of(k) for k in keys]).items():
                blob = row.fields[b"value"]
                stamp = hashlib.sha1(blob, usedforsecurity=False).hexdigest()
                tags = ",".join(value_tokens(row.value))
                rows.append((id_, stamp, q.decode_ns(_s(row.fields[b"ns"])), tags))
            done += self._names.backfill(rows) if rows else 0
        log.info(
            "Upgraded the Redis store under prefix %r to schema %d: %d items in %.1f s.",
            self.prefix, SCHEMA_VERSION, done, time.perf_counter() - started,
        )  # fmt: skip

    def _create_index(self, name: str, key_prefix: str, schema: list[Any]) -> bool:
        """FT.CREATE unless it exists; True when this call created it."""
        import redis

        try:
            self._cmd(
                "FT.CREATE", name, "ON", "HASH", "PREFIX", 1, key_prefix,
                "STOPWORDS", 0, "SCHEMA", *schema,
            )  # fmt: skip
            return True
        except redis.ResponseError as exc:
            if "already exists" in str(exc).lower():
                return False
            if "unknown command" in str(exc).lower():
                raise StoreError(
                    "This Redis has no query engine (FT.CREATE is unknown). Use Redis 8, "
                    "Redis Stack, or a managed Redis with search enabled."
                ) from exc
            raise

    def _claim_embedder(self, meta: dict[str, str], verify: bool) -> None:
        stored = meta.get("embedder")
        target = meta.get("reembedding")
        if target is not None and verify:  # refuse both embedders until reembed finishes
            raise ReembedUnfinishedError(stored or "", target, self._where())
        has_vectors = self._vector_count() > 0
        if stored and stored != self.embedder_id and verify and has_vectors:
            raise EmbedderMismatchError(stored, self.embedder_id or "", self._where())
        if meta.get("dims") not in (None, str(self.dims)) and not has_vectors:
            self._drop_vector_index()
        self._create_index(self._vectors_index, f"{self.prefix}:v:", self._vector_schema())
        if stored != self.embedder_id and (not stored or not has_vectors):
            self._r.hset(self._meta_key, mapping={"embedder": self.embedder_id or ""})
        if not has_vectors or "dims" not in meta:
            self._r.hset(self._meta_key, mapping={"dims": str(self.dims)})

    def _drop_vector_index(self) -> None:
        self._drop_index(self._vectors_index)

    def _drop_index(self, name: str) -> None:
        import redis

        try:
            self._cmd("FT.DROPINDEX", name)
        except redis.ResponseError as exc:
            if "unknown index" not in str(exc).lower() and "no such" not in str(exc).lower():
                raise

    def _vector_count(self) -> int:
        """Vectors in the index; 0 only when the index does not exist yet.

        Any other refusal is an error: a guessed 0 would skip the embedder check
        and let ``_claim_embedder`` drop the vector index.
        """
        import redis

        try:
            found = self._cmd("FT.SEARCH", self._vectors_index, "*", "LIMIT", 0, 0, "DIALECT", 2)
        except redis.ResponseError as exc:
            text = str(exc).lower()
            if "no such index" in text or "unknown index" in text:
                return 0
            raise StoreError(
                f"Redis refused to count the vectors under prefix {self.prefix!r} "
                f"({type(exc).__name__}: {exc}); memshelf needs the count to check the "
                "embedder before it uses the store. Let this Redis user run the query engine's "
                "commands (ACL +@search) and check the server's log, then open the store again."
            ) from exc
        return int(found[b"total_results"])

    def _where(self) -> str:
        return f"Redis at {display_url(self.url)}, prefix {self.prefix!r}"

    def meta(self, key: str) -> str | None:
        raw = self._r.hget(self._meta_key, key)
        return None if raw is None else _s(raw)

    def _disconnect(self) -> None:
        self._r.close()

    def __repr__(self) -> str:
        return f"RedisStore({redact(self.url)}, prefix={self.prefix!r})"

    def drop(self) -> None:
        """Delete every key and index under this store's prefix (tests, resets)."""
        drop_prefix(self._r, self.prefix)

    def _cmd(self, *args: Any) -> Any:
        return self._r.execute_command(*args)  # type: ignore[no-untyped-call]

    # ----------------------------------------------------------------- keys
    def _item_key(self, id_: str) -> str:
        return f"{self.prefix}:i:{id_}"

    def _vector_key(self, id_: str, n: int) -> str:
        return f"{self.prefix}:v:{id_}:{n}"

    # ----------------------------------------------------------------- batching
    def _execute(
        self,
        ops: list[Op],
        plan: Plan,
        vectors: np.ndarray | None,
        queries: dict[str, np.ndarray],
    ) -> list[Result]:
        self._check_open()
        now = time.time()
        results: list[Result] = []
        refresh: _Refresh = {}
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op, refresh))
            elif isinstance(op, SearchOp):
                results.append(self._search(op, queries, refresh))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:
                results.append(None)
        if refresh:
            self._refresh(refresh)
        if plan.puts:
            self._write(plan, vectors, now)
        return results

    # ----------------------------------------------------------------- reads
    def _load(self, ids: list[str]) -> dict[str, _Row]:
        """Live items by id; expired or deleted ones are simply absent."""
        if not ids:
            return {}
        pipe = self._r.pipeline(transaction=False)
        for id_ in ids:
            pipe.hmget(self._item_key(id_), _FIELDS)
        out: dict[str, _Row] = {}
        for id_, values in zip(ids, pipe.execute(), strict=True):
            if values[2] is not None:
                out[id_] = _Row(id_, dict(zip(_FIELDS, values, strict=True)))
        return out

    def _note_refresh(self, refresh: _Refresh, refresh_ttl: bool | None, row: _Row) -> None:
        ttl = row.ttl
        if ttl is not None and self._refreshes(refresh_ttl):
            refresh[row.id] = (ttl, row.nvec, q.decode_ns(_s(row.fields[b"ns"])))

    def _get(self, op: GetOp, refresh: _Refresh) -> Item | None:
        id_ = item_id(op.namespace, op.key)
        row = self._load([id_]).get(id_)
        if row is None or _s(row.fields[b"key"]) != op.key:
            return None
        if q.decode_ns(_s(row.fields[b"ns"])) != tuple(op.namespace):
            return None
        self._note_refresh(refresh, op.refresh_ttl, row)
        return row.item()

    def _search(
        self, op: SearchOp, queries: dict[str, np.ndarray], refresh: _Refresh
    ) -> list[SearchItem]:
        q.check_filter(op.filter)  # an unknown operator fails whether or not an item reaches it
        clause = filter_clause(op.filter)
        if clause is None:
            return []  # no value can pass the filter

        def fetch(ids: list[str]) -> dict[str, _Row]:
            rows = self._load(ids)
            return {i: r for i, r in rows.items() if q.matches_filter(r.value, op.filter)}

        page = search_page(
            op,
            (lambda: self._ranked(op, queries, clause)) if self._scored(op) else None,
            fetch,
            lambda want, skip: self._scan(op, clause, want, skip),
        )
        for row, _ in page:
            self._note_refresh(refresh, op.refresh_ttl, row)
        return [row.item(score, search=True) for row, score in page]  # type: ignore[misc]

    def _scope(self, prefix: tuple[str, ...], clause: str = "") -> str:
        """Query terms for the items under ``prefix`` that pass a filter's ``clause``."""
        scope = f"@nsp:{{{q.prefix_tag(prefix)}}}" if prefix else ""
        return f"{scope} {clause}".strip()

    def _ft_search(self, index: str, query: str, *args: Any) -> list[dict[bytes, Any]]:
        found = self._cmd("FT.SEARCH", index, query, *args, "DIALECT", 2)
        for warning in found.get(b"warning") or ():
            if b"timeout" in warning.lower():
                raise StoreError(
                    f"Redis search timed out ({_s(warning)}); raise the server's "
                    "search-timeout or use vector_algorithm='HNSW' for very large namespaces."
                )
        results: list[dict[bytes, Any]] = found[b"results"]
        return results

    def _ranked(
        self, op: SearchOp, queries: dict[str, np.ndarray], clause: str
    ) -> Iterator[list[tuple[str, float]]]:
        """Chunks of (item id, score), best first: dense and keyword scores fused exactly.

        Dense candidates come from KNN over the prefix; keyword hits outside them get
        their cosine computed here. Anything outside both scores at most
        (1 - w) x the k-th distance, so candidates above that bound are final;
        below it, k grows fourfold.
        """
        scope = self._scope(tuple(op.namespace_prefix), clause)
        keyword = self._keyword_hits(scope, op.query or "") if self.keyword_weight > 0 else {}
        query_vec = queries.get(op.query or "")  # may still be embedding: see QueryVectors
        if query_vec is None:
            yield from best_first_chunks(keyword, _PAGE)
            return
        w = self.keyword_weight
        want = max(2 * (op.offset + op.limit), 32)
        done = 0
        off_list: dict[str, float] = {}
        while True:
            hits, full = self._knn(scope, query_vec, want)
            dense: dict[str, float] = {}
            for id_, sim in hits:
                dense[id_] = max(sim, dense.get(id_, -math.inf))
            missing = [i for i in keyword if i not in dense and i not in off_list]
            off_list.update(self._dense_of(missing, query_vec))
            scores = {i: (1.0 - w) * d + w * keyword.get(i, 0.0) for i, d in dense.items()}
            for i, kw in keyword.items():
                if i not in dense and i in off_list:
                    scores[i] = (1.0 - w) * off_list[i] + w * kw
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
            if full and hits:
                bound = (1.0 - w) * min(sim for _, sim in hits)
                ranked = [kv for kv in ranked if kv[1] >= bound]
            if len(ranked) > done:
                yield ranked[done:]
                done = len(ranked)
            if not full:
                return
            want *= 4

    def _knn(
        self, scope: str, query_vec: np.ndarray, k: int
    ) -> tuple[list[tuple[str, float]], bool]:
        """(item id, cosine) of the k nearest vectors in ``scope``, and whether k were found."""
        results = self._ft_search(
            self._vectors_index,
            f"({scope or '*'})=>[KNN {k} @vec $vec AS dist]",
            "PARAMS", 2, "vec", np.asarray(query_vec, dtype=np.float32).tobytes(),
            "SORTBY", "dist", "ASC", "LIMIT", 0, k, "RETURN", 2, "item", "dist",
        )  # fmt: skip
        out = []
        for hit in results:
            attrs = hit.get(b"extra_attributes") or {}
            if attrs.get(b"item") is None or attrs.get(b"dist") is None:
                continue  # expired between the index and the hash
            out.append((_s(attrs[b"item"]), 1.0 - float(attrs[b"dist"])))
        return out, len(results) >= k

    def _dense_of(self, ids: list[str], query_vec: np.ndarray) -> dict[str, float]:
        """Best cosine of each item's stored vectors (keyword hits outside the KNN set)."""
        if not ids:
            return {}
        counts = self._r.pipeline(transaction=False)
        for id_ in ids:
            counts.hget(self._item_key(id_), "nvec")
        owners: list[str] = []
        pipe = self._r.pipeline(transaction=False)
        for id_, n in zip(ids, counts.execute(), strict=True):
            for i in range(int(n or 0)):
                owners.append(id_)
                pipe.hget(self._vector_key(id_, i), "vec")
        out: dict[str, float] = {}
        for id_, blob in zip(owners, pipe.execute(), strict=True):
            if blob is not None and len(blob) == 4 * self.dims:
                sim = float(np.frombuffer(blob, dtype=np.float32) @ query_vec)
                out[id_] = max(sim, out.get(id_, -math.inf))
        return out

    def _keyword_hits(self, scope: str, query: str) -> dict[str, float]:
        """BM25 over the query's rarest words, within the budget (``_redis_keyword.py``)."""
        hits = keyword_hits(self._r, self._items_index, scope, query, self._ft_search)
        return {self._id_of(key): score for key, score in hits.items()}

    def _id_of(self, key: bytes) -> str:
        return _s(key).rsplit(":", 1)[1]

    def _scan(self, op: SearchOp, clause: str, want: int, skip: set[str]) -> Iterator[_Row]:
        """Items under the prefix that pass the filter's server-side ``clause``, newest
        first, re-checked in Python: listings, and scoreless tails."""
        query = self._scope(tuple(op.namespace_prefix), clause)
        if op.query and self.embeddings is not None:
            query += " @nvec:[0 0]"

        def fetch_page(offset: int, page: int) -> list[dict[bytes, Any]]:
            return self._ft_search(
                self._items_index, query.strip() or "*", "SORTBY", "updated", "DESC",
                "LIMIT", offset, page, "RETURN", len(_FIELDS), *_FIELDS,
            )  # fmt: skip

        def accept(hit: dict[bytes, Any]) -> _Row | None:
            attrs = hit.get(b"extra_attributes")
            id_ = self._id_of(hit[b"id"])
            if not attrs or attrs.get(b"value") is None or id_ in skip:
                return None  # expired, or already ranked
            row = _Row(id_, attrs)
            return row if q.matches_filter(row.value, op.filter) else None

        if not op.filter:
            return scan_pages(fetch_page, accept, want, False)
        return _growing_scan(fetch_page, accept, want)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        return self._names.list_namespaces(op)

    # ----------------------------------------------------------------- writes
    def _refresh(self, refresh: _Refresh) -> None:
        """Re-arm each read item's own TTL on it, its vectors and its namespace's entry
        (never revives a gone key)."""
        self._names.refresh([(id_, *rest) for id_, rest in refresh.items()])

    def _write(self, plan: Plan, vectors: np.ndarray | None, now: float) -> None:
        """Apply every put of the batch in one MULTI/EXEC, retried if a key changed meanwhile."""
        ids = {target: item_id(*target) for target in plan.puts}
        keys = [self._item_key(i) for i in ids.values()]
        rows_of = plan.rows_of()

        def apply(pipe: redis.client.Pipeline) -> None:
            # The keys are WATCHed already, so they may be read in one round trip on
            # another connection: a change after the WATCH still fails the EXEC.
            reads = self._r.pipeline(transaction=False)
            for id_ in ids.values():
                reads.hmget(self._item_key(id_), ["nvec", "created"])
            old = {
                target: (int(nvec or 0), created)
                for target, (nvec, created) in zip(ids, reads.execute(), strict=True)
            }
            pipe.multi()
            for target, op in plan.puts.items():
                id_, (old_nvec, old_created) = ids[target], old[target]
                key = self._item_key(id_)
                pipe.delete(key, *(self._vector_key(id_, n) for n in range(old_nvec)))
                blob = plan.blobs[target]
                if blob is None:
                    continue
                rows = rows_of.get(target, [])
                texts = [plan.texts[r] for r in rows]
                nsp = ",".join(q.ns_tags(op.namespace))
                tags = ",".join(value_tokens(json.loads(blob)))
                mat = vectors[rows] if vectors is not None and rows else None
                fields: dict[Any, Any] = {
                    "ns": q.encode_ns(op.namespace),
                    "key": op.key,
                    "value": blob,
                    "created": _s(old_created) if old_created is not None else repr(now),
                    "updated": repr(now),
                    "ttl": "" if op.ttl is None else repr(float(op.ttl)),
                    "nvec": 0 if mat is None else len(mat),
                    "spec": "" if op.index is None else json.dumps(op.index),
                    "nsp": nsp,
                }
                if texts:
                    fields["text"] = "\n".join(texts)
                if tags:
                    fields["fv"] = tags
                pipe.hset(key, mapping=fields)
                written = [key]
                for n, vec in enumerate(mat if mat is not None else ()):
                    vkey = self._vector_key(id_, n)
                    vfields: dict[Any, Any] = {"nsp": nsp, "item": id_, "vec": vec.tobytes()}
                    if tags:
                        vfields["fv"] = tags
                    pipe.hset(vkey, mapping=vfields)
                    written.append(vkey)
                if op.ttl is not None:
                    ms = max(1, round(float(op.ttl) * 60_000))
                    for k in written:
                        pipe.pexpire(k, ms)
            self._names.after_write(pipe, [(ids[t], t[0]) for t in plan.puts])

        self._r.transaction(apply, *keys)

    # ----------------------------------------------------------------- maintenance
    def sweep_ttl(self) -> int:
        """Redis deletes expired keys itself; there is never anything left to sweep."""
        return 0

    def scrub(self) -> None:
        """Deleted keys are gone from memory at once; rewrite the append-only file, where
        one is kept, so it no longer replays them (managed Redis may refuse: ignored)."""
        import redis

        try:
            conf: dict[Any, Any] = dict(self._r.config_get("appendonly"))
            if conf.get("appendonly", conf.get(b"appendonly")) in ("yes", b"yes"):
                self._r.bgrewriteaof()
        except redis.ResponseError:
            log.info("Redis refused CONFIG GET/BGREWRITEAOF; its persistence files are its own.")

    def stats(self) -> dict[str, Any]:
        """Counts for `memshelf doctor`: items, vectors, namespaces, memory, embedder."""
        info = self._cmd("FT.INFO", self._items_index)
        items = int(info.get(b"num_docs", 0))
        namespaces = self._names.count()
        return {
            "url": redact(self.url),
            "prefix": self.prefix,
            "items": items,
            "vectors": self._vector_count() if self.dims else 0,
            "namespaces": namespaces,
            "used_memory": int(self._r.info("memory").get("used_memory", 0)),
            "embedder": self.meta("embedder"),
            "schema": int(self.meta("schema") or 0),
        }

    def reembed(self, batch_size: int = 256) -> int:
        """Re-embed every indexed item with the configured embedder; concurrent writes win.

        Every item is read and embedded first, outside any transaction, so an
        embedder error changes nothing. Then each batch of about ``batch_size``
        vectors is swapped in by one atomic script (Redis stays responsive, and
        no WATCH retry loop can starve) that checks, item by item, that the item
        is still the version that was embedded (same ``updated``, value and
        index spec). An item put meantime keeps the vectors its own put wrote;
        one deleted or expired meantime gets none; new vectors take the item's
        remaining TTL. Returns how many items got vectors here. The embedder is
        recorded last; until then meta's ``reembedding`` names it, and opening the store
        (with either embedder) raises :class:`ReembedUnfinishedError`: a reembed that
        stops part-way leaves two embedders' vectors, and is run again to finish.
        """
        if self.embeddings is None:
            raise MemshelfError("reembed needs a store opened with an index (an embedder).")
        snapshot: dict[str, tuple[str, list[str]]] = {}
        for keys in key_batches(self._r, f"{self.prefix}:i:*"):
            for id_, row in self._load([self._id_of(k) for k in keys]).items():
                raw = row.fields.get(b"spec")
                spec = json.loads(raw) if raw else None
                found = q.texts_to_index(row.value, spec, self._fields)
                snapshot[id_] = (_stamp(row.fields), [text for _, text in found])
        mat = self._embed_all([t for _, texts in snapshot.values() for t in texts], batch_size)
        self._r.hset(self._meta_key, "reembedding", self.embedder_id or "")
        if self.meta("dims") != str(self.dims):
            self._drop_vector_index()
            self._create_index(self._vectors_index, f"{self.prefix}:v:", self._vector_schema())
        swap = self._r.register_script(_SWAP_VECTORS)
        done, at, vecs = 0, 0, 0
        batch: list[str] = []
        args: list[Any] = [f"{self.prefix}:v:"]
        for n, (id_, (stamp, texts)) in enumerate(snapshot.items(), 1):
            batch.append(self._item_key(id_))
            args += [id_, stamp, len(texts), *(v.tobytes() for v in mat[at : at + len(texts)])]
            at, vecs = at + len(texts), vecs + len(texts)
            if vecs >= batch_size or len(batch) >= batch_size or n == len(snapshot):
                done += int(swap(keys=batch, args=args))
                batch, args, vecs = [], args[:1], 0
        with self._r.pipeline(transaction=True) as p:
            p.hset(
                self._meta_key,
                mapping={"embedder": self.embedder_id or "", "dims": str(self.dims)},
            )
            p.hdel(self._meta_key, "reembedding")
            p.execute()
        return done


def _growing_scan(
    fetch_page: Callable[[int, int], list[dict[bytes, Any]]],
    accept: Callable[[dict[bytes, Any]], _Row | None],
    want: int,
) -> Iterator[_Row]:
    """Up to ``want`` accepted rows of a filtered listing, in pages growing fourfold: a
    filter the server could not narrow may reject most rows, and every page is a sort."""
    offset, page, produced = 0, max(want, 64), 0
    while True:
        batch = fetch_page(offset, page)
        for raw in batch:
            row = accept(raw)
            if row is not None:
                yield row
                produced += 1
                if produced >= want:
                    return
        if len(batch) < page:
            return
        offset, page = offset + page, min(page * 4, max(_SCAN_PAGE, want))


__all__ = [
    "RedisStore",
    "ReembedUnfinishedError",
    "connect",
    "drop_prefix",
    "item_id",
    "password_args",
]
