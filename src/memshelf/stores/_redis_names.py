"""The Redis store's namespace registry: ``list_namespaces`` without reading a single item.

Keys under the store's prefix ``P``::

    P:names        ZSET  every namespace holding a live item; all scores 0, members
                         are ``_query.order_key`` (labels joined by NUL), so the
                         server's lexicographic order is the namespace tuples' order
    P:names:ttl    ZSET  the same members, scored by the latest expiry (ms since the
                         epoch, ``inf`` when an item never expires) of their items
    P:n:<sha1>     ZSET  one namespace's item ids, scored by each item's expiry

The scripts below keep them in step with the items, atomically: the write
script runs inside the put's MULTI/EXEC, after the item commands, and reads
each item's real ``PEXPIRETIME``; a TTL refresh raises the scores. A namespace
whose latest expiry has passed holds only expired items (Redis already hides
them), so ``collect`` drops it, re-checking under the server's clock inside a
script; every write and listing collects first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from langgraph.store.base import ListNamespacesOp, MatchCondition

from memshelf.stores import _query as q

if TYPE_CHECKING:
    import redis

_PAGE = 2000
_COLLECT = 256

_LIB = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function sync(names, dl, nkey, ord, now)
  redis.call('ZREMRANGEBYSCORE', nkey, '-inf', '(' .. now)
  local top = redis.call('ZRANGE', nkey, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', names, ord)
    redis.call('ZREM', dl, ord)
  else
    redis.call('ZADD', names, 0, ord)
    redis.call('ZADD', dl, top[2], ord)
  end
end
local function collect(names, dl, nprefix, now, most)
  local dead = redis.call('ZRANGE', dl, '-inf', '(' .. now, 'BYSCORE', 'LIMIT', 0, most)
  for _, ord in ipairs(dead) do
    redis.call('ZREM', names, ord)
    redis.call('ZREM', dl, ord)
    redis.call('DEL', nprefix .. redis.sha1hex(ord))
  end
  return #dead
end
"""
# After a batch's item writes. KEYS: names, deadlines, then each item's key; ARGV: the
# per-namespace key prefix, then per item its id and its namespace's order key.
_WRITTEN = (
    _LIB
    + """
local names, dl, nprefix = KEYS[1], KEYS[2], ARGV[1]
local now, touched = now_ms(), {}
for i = 3, #KEYS do
  local id, ord = ARGV[2 * i - 4], ARGV[2 * i - 3]
  local nkey = nprefix .. redis.sha1hex(ord)
  local at = redis.call('PEXPIRETIME', KEYS[i])
  if at == -2 then redis.call('ZREM', nkey, id)
  elseif at == -1 then redis.call('ZADD', nkey, 'inf', id)
  else redis.call('ZADD', nkey, at, id) end
  touched[ord] = nkey
end
for ord, nkey in pairs(touched) do sync(names, dl, nkey, ord, now) end
collect(names, dl, nprefix, now, 64)
return 0
"""
)
# Refresh-on-read. KEYS: deadlines, then each item's key; ARGV: the per-namespace and the
# vector key prefixes, then per item its id, TTL in ms, vector count and order key.
# A key already gone is never revived.
_REFRESH = """
local dl, nprefix, vprefix = KEYS[1], ARGV[1], ARGV[2]
for i = 2, #KEYS do
  local a = 4 * i - 5
  local id, ms, n, ord = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  if redis.call('PEXPIRE', KEYS[i], ms) == 1 then
    for v = 0, n - 1 do redis.call('PEXPIRE', vprefix .. id .. ':' .. v, ms) end
    local at = redis.call('PEXPIRETIME', KEYS[i])
    redis.call('ZADD', nprefix .. redis.sha1hex(ord), 'XX', at, id)
    redis.call('ZADD', dl, 'XX', 'GT', at, ord)
  end
end
return 0
"""
_COLLECT_SCRIPT = (
    _LIB
    + "return collect(KEYS[1], KEYS[2], ARGV[1], now_ms(), tonumber(ARGV[2]))"
)  # fmt: skip
# Schema 1 -> 2, one batch. KEYS: names, deadlines, then each item's key; ARGV: the
# per-namespace and vector key prefixes, then per item its id, the sha1 of the value
# the tags were computed from, its order key and its ``fv`` tags. An item rewritten
# or gone since it was read is left to whoever wrote it.
_BACKFILL = (
    _LIB
    + """
local names, dl, nprefix, vprefix = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now, touched, done = now_ms(), {}, 0
for i = 3, #KEYS do
  local a = 4 * i - 9
  local id, stamp, ord, fv = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local f = redis.call('HMGET', KEYS[i], 'value', 'nvec')
  if f[1] and redis.sha1hex(f[1]) == stamp then
    if fv ~= '' then
      redis.call('HSET', KEYS[i], 'fv', fv)
      for v = 0, (tonumber(f[2]) or 0) - 1 do
        local vkey = vprefix .. id .. ':' .. v
        if redis.call('EXISTS', vkey) == 1 then redis.call('HSET', vkey, 'fv', fv) end
      end
    end
    local nkey = nprefix .. redis.sha1hex(ord)
    local at = redis.call('PEXPIRETIME', KEYS[i])
    redis.call('ZADD', nkey, at == -1 and 'inf' or at, id)
    touched[ord] = nkey
    done = done + 1
  end
end
for ord, nkey in pairs(touched) do sync(names, dl, nkey, ord, now) end
return done
"""
)


def _decode(member: bytes) -> tuple[str, ...]:
    return tuple(member.decode("utf-8").split("\x00"))


def _bounds(prefix: tuple[str, ...]) -> tuple[bytes, bytes]:
    """Lexicographic range of the registry holding exactly the namespaces under ``prefix``."""
    if not prefix:
        return b"-", b"+"
    key = q.order_key(prefix)
    return b"[" + key, b"(" + key + b"\x01"


def _exact(conditions: tuple[MatchCondition, ...], prefix: tuple[str, ...]) -> bool:
    """Whether the range under ``prefix`` holds exactly the namespaces every condition keeps."""
    return all(
        c.match_type == "prefix" and "*" not in c.path and tuple(c.path) == prefix[: len(c.path)]
        for c in conditions
    )


class Registry:
    """The registry of one store prefix, read and kept through one client."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self.names = f"{prefix}:names"
        self.deadlines = f"{prefix}:names:ttl"
        self.item_prefix = f"{prefix}:i:"
        self.ns_prefix = f"{prefix}:n:"
        self.vector_prefix = f"{prefix}:v:"
        self._collect = client.register_script(_COLLECT_SCRIPT)
        self._refresh = client.register_script(_REFRESH)
        self._backfill = client.register_script(_BACKFILL)

    def ns_key(self, namespace: Sequence[str]) -> str:
        """The key of one namespace's item set (tests and tools)."""
        digest = hashlib.sha1(q.order_key(namespace), usedforsecurity=False).hexdigest()
        return self.ns_prefix + digest

    # ----------------------------------------------------------------- writes
    def after_write(self, pipe: Any, targets: list[tuple[str, tuple[str, ...]]]) -> None:
        """Queue, in ``pipe``'s transaction after the item commands, the registry update
        for each (item id, namespace) written or deleted."""
        keys: list[Any] = [self.names, self.deadlines]
        args: list[Any] = [self.ns_prefix]
        for id_, namespace in targets:
            keys.append(self.item_prefix + id_)
            args += [id_, q.order_key(namespace)]
        # EVAL, not EVALSHA: inside MULTI an unknown script would fail alone, at EXEC,
        # after the items were written.
        pipe.eval(_WRITTEN, len(keys), *keys, *args)

    def refresh(self, items: list[tuple[str, float, int, tuple[str, ...]]]) -> None:
        """Re-arm (item id, TTL in minutes, vector count, namespace) items' own TTLs."""
        keys: list[Any] = [self.deadlines]
        args: list[Any] = [self.ns_prefix, self.vector_prefix]
        for id_, ttl, nvec, namespace in items:
            keys.append(self.item_prefix + id_)
            args += [id_, max(1, round(ttl * 60_000)), nvec, q.order_key(namespace)]
        self._refresh(keys=keys, args=args)

    def backfill(self, rows: list[tuple[str, str, tuple[str, ...], str]]) -> int:
        """Schema 1 -> 2 for (item id, sha1 of value, namespace, fv tags) rows."""
        keys: list[Any] = [self.names, self.deadlines]
        args: list[Any] = [self.ns_prefix, self.vector_prefix]
        for id_, stamp, namespace, tags in rows:
            keys.append(self.item_prefix + id_)
            args += [id_, stamp, q.order_key(namespace), tags]
        return int(self._backfill(keys=keys, args=args))

    def collect(self) -> None:
        """Drop namespaces whose every item has expired, a bounded page per script."""
        keys: list[Any] = [self.names, self.deadlines]
        args: list[Any] = [self.ns_prefix, _COLLECT]
        while int(self._collect(keys=keys, args=args)) >= _COLLECT:
            continue

    # ----------------------------------------------------------------- reads
    def count(self) -> int:
        self.collect()
        return int(self._r.zcard(self.names))

    def list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        """LangGraph's ``list_namespaces``: InMemoryStore's order, bounds and truncation.

        A wildcard-free prefix (and no ``max_depth``) is one range read with the
        server's LIMIT; otherwise the range under the conditions' fixed prefix is
        walked, conditions checked in Python, stopping at offset + limit, and under
        ``max_depth`` reading on past everything below each truncated name.
        """
        self.collect()
        conditions = tuple(op.match_conditions or ())
        depth, offset, limit = op.max_depth, op.offset, op.limit
        if offset < 0 or limit < 0 or (depth is not None and depth < 1):
            found = self._walk(conditions, None, None)  # Python's slice semantics: all, then cut
            return q.list_namespaces(found, conditions, depth, limit, offset)
        if limit == 0:
            return []
        prefix = q.fixed_prefix(conditions)
        if depth is None and _exact(conditions, prefix):
            low, high = _bounds(prefix)
            rows = self._range(low, high, offset, limit)
            return [_decode(r) for r in rows]
        return self._walk(conditions, depth, offset + limit)[offset:]

    def _range(self, low: bytes, high: bytes, offset: int, count: int) -> list[bytes]:
        found = self._r.zrange(self.names, low, high, bylex=True, offset=offset, num=count)
        return cast("list[bytes]", found)

    def _walk(
        self, conditions: tuple[MatchCondition, ...], max_depth: int | None, want: int | None
    ) -> list[tuple[str, ...]]:
        """Matching namespaces (truncated to ``max_depth``) in order, up to ``want``."""
        start, high = _bounds(q.fixed_prefix(conditions))
        full = _PAGE if want is None else min(max(2 * want, 64), _PAGE)
        page = full if max_depth is None else min(full, 64)
        below: bytes = b""  # members under a truncated name already listed sort before this
        found: list[tuple[str, ...]] = []
        while True:
            rows = self._range(start, high, 0, page)
            jumped = False
            for member in rows:
                if member < below:
                    continue
                namespace = _decode(member)
                if not all(q.does_match(c, namespace) for c in conditions):
                    continue
                if max_depth is not None and len(namespace) > max_depth:
                    namespace = namespace[:max_depth]
                    below, jumped = q.order_key(namespace) + b"\x01", True
                if not found or found[-1] != namespace:
                    found.append(namespace)
                    if want is not None and len(found) >= want:
                        return found
            if len(rows) < page:
                return found
            start = b"[" + below if below > rows[-1] else b"(" + rows[-1]
            if not jumped:  # nothing to jump over in a whole page: read more at once
                page = min(page * 4, full)
