"""LangGraph store filters as Redis query-engine TAG clauses, so the server skips what cannot match.

Every item carries an ``fv`` TAG: one opaque token per scalar leaf of its value,
a hash of the leaf's path and its value in a canonical form where two values
get the same form exactly when Python's ``==`` holds between them (``True``,
``1`` and ``1.0`` share one; ``"1"`` does not). ``None`` leaves get no token.

A filter becomes a *superset* condition, as in ``_sqlfilter.py``: it holds for
every item ``_query.matches_filter`` accepts, and the Python test that follows
stays the final word, so results never change.

- Equality (plain or ``$eq``) on a string, number or boolean, also inside
  nested dicts and lists, requires the leaf's token.
- ``$ne`` on such a scalar excludes items holding that exact token: a token is
  present exactly when the leaf equals it, so no passing item is excluded.
- Range operators, ``None`` (a missing key reads as ``None``), empty lists and
  dicts, values of other types and paths deeper than ``MAX_DEPTH`` add no
  condition; a NaN to equal, a tuple to ``$eq`` (a JSON array loads as a list)
  or a bound ``float()`` refuses means nothing can match.
- An item with more than ``MAX_LEAVES`` leaves is tagged ``fvall`` instead,
  and every required token also accepts ``fvall``, so Python decides for it.

Tokens are hex digests, so nothing a caller supplies reaches the query parser.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

ALL = "fvall"
MAX_DEPTH = 8
MAX_LEAVES = 256
MAX_TERMS = 32
Path = tuple[str | int, ...]


class _Never(Exception):
    """No value can satisfy the filter."""


def _canon(value: Any) -> str | None:
    """A form two values share exactly when Python's ``==`` holds; None: no such form."""
    kind: Any = type(value)  # a subclass that redefines == is left to Python
    if isinstance(value, str) and kind.__eq__ is str.__eq__:
        return "s" + str.__str__(value)
    if isinstance(value, int) and kind.__eq__ is int.__eq__:
        return "i" + str(int(value))  # bool included: True == 1
    if isinstance(value, float) and kind.__eq__ is float.__eq__:
        number = float(value)
        if math.isnan(number):
            raise _Never
        if math.isinf(number):
            return "f" + repr(number)
        return "i" + str(int(number)) if number.is_integer() else "f" + repr(number)
    return None


def token(path: Path, canon: str) -> str:
    """The tag of one leaf: its path (keys and list indices, unambiguously) and value."""
    parts = [f"k{len(p)}:{p}" if isinstance(p, str) else f"#{p}" for p in path]
    raw = "".join(parts) + "=" + canon
    return hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        if len(path) < MAX_DEPTH:
            for key, child in value.items():
                yield from _leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        if len(path) < MAX_DEPTH:
            for i, child in enumerate(value):
                yield from _leaves(child, (*path, i))
    elif value is not None and path:
        yield path, value


def value_tokens(value: Mapping[str, Any]) -> list[str]:
    """The ``fv`` tags of a stored value (as loaded from its JSON)."""
    tokens: list[str] = []
    for n, (path, leaf) in enumerate(_leaves(dict(value), ())):
        if n >= MAX_LEAVES:
            return [ALL]
        try:
            canon = _canon(leaf)
        except _Never:
            continue  # NaN equals nothing
        if canon is not None:
            tokens.append(token(path, canon))
    return list(dict.fromkeys(tokens))


class _Clause:
    def __init__(self) -> None:
        self.must: list[str] = []
        self.must_not: list[str] = []

    def equal(self, path: Path | None, wanted: Any) -> None:
        """Python's ``actual == wanted``, where ``actual`` must be present (inside $eq values)."""
        if path is None or wanted is None or len(path) > MAX_DEPTH:
            return
        if isinstance(wanted, tuple):
            raise _Never  # a JSON array loads as a list, and a list never equals a tuple
        if isinstance(wanted, list):
            for i, element in enumerate(wanted):
                self.equal((*path, i), element)
            return
        if isinstance(wanted, dict):
            if not all(isinstance(k, str) for k in wanted):
                raise _Never  # JSON object keys are strings
            for key, child in wanted.items():
                self.equal((*path, key), child)
            return
        canon = _canon(wanted)
        if canon is not None:
            self.must.append(token(path, canon))

    def match(self, path: Path | None, wanted: Any) -> None:
        """``_query._compare(value at path, wanted)``."""
        if path is None or len(path) > MAX_DEPTH:
            return
        if isinstance(wanted, Mapping):
            if any(str(k).startswith("$") for k in wanted):
                for op, arg in wanted.items():
                    self.operator(path, op, arg)
                return
            for key, child in wanted.items():
                self.match((*path, key) if isinstance(key, str) else None, child)
            return
        if isinstance(wanted, list | tuple):
            for i, element in enumerate(wanted):
                self.match((*path, i), element)
            return
        self.equal(path, wanted)

    def operator(self, path: Path, op: str, arg: Any) -> None:
        if op == "$eq":
            self.equal(path, arg)
        elif op == "$ne":
            if arg is not None and not isinstance(arg, list | tuple | dict):
                try:
                    canon = _canon(arg)
                except _Never:
                    return  # everything differs from NaN
                if canon is not None:
                    self.must_not.append(token(path, canon))
        else:
            try:
                bound = float(arg)
            except (TypeError, ValueError):
                raise _Never from None  # Python's float(arg) fails: no row passes
            except OverflowError:
                return  # Python raises for the rows that reach it; let it
            if math.isnan(bound):
                raise _Never


def filter_clause(filter_: Mapping[str, Any] | None, field: str = "fv") -> str | None:
    """Query-engine terms every item passing ``filter_`` satisfies; None: none can pass.

    ``filter_`` must already have passed ``_query.check_filter``; an empty string
    means the filter narrows nothing the server could check.
    """
    if not filter_:
        return ""
    clause = _Clause()
    try:
        for key, wanted in filter_.items():
            clause.match((key,) if isinstance(key, str) else None, wanted)
    except _Never:
        return None
    must = list(dict.fromkeys(clause.must))[:MAX_TERMS]
    must_not = list(dict.fromkeys(clause.must_not))[:MAX_TERMS]
    terms = [f"@{field}:{{{t} | {ALL}}}" for t in must]
    terms += [f"-@{field}:{{{t}}}" for t in must_not]
    return " ".join(terms)
