"""LangGraph store filters as SQLite conditions on an item's JSON, so SQL skips what cannot match.

The condition is a *superset*: it holds for every row ``_query.matches_filter``
accepts (and maybe a few more), and the Python test that follows stays the
final word, so results never change. Where SQLite's JSON cannot decide a case
exactly as Python does, the condition keeps the row rather than guess:

- ``true`` reads as 1 and ``1 == 1.0 == True`` in Python too, so numbers and
  booleans compare as numbers; strings never equal numbers (SQLite's ordering
  puts every text above every number, and results have no affinity).
- ``$gt``/``$lt`` follow Python's ``float()``, which also parses strings such as
  ``" 1_000 "``: every string value is kept for the Python test.
- Float bounds get a relative slack of 1e-9, so a last-bit difference between
  SQLite's and Python's number parsing never drops a row.
- SQLite 3.40 rejects ``NaN``/``Infinity`` (which ``json.dumps`` writes): such rows
  skip the JSON test, and a filter for ±inf keeps them (only a valid ``1e999``
  reads as inf in SQL). It also ends a string at ``\\u0000``, so a string holding NUL
  compares by its part before the NUL, and ``$ne`` never drops a row holding one.
- A plain ASCII string the filter requires must appear, quoted, in the row's JSON
  text: ``instr`` checks that before any JSON is parsed, which rejects most rows
  at a fraction of a parse's cost.
- A key SQLite's JSON path cannot name (one holding ``"``, ``\\`` or a control
  character, or a lone surrogate, which no stored key holds) is left to Python.
- Conditions are joined as a balanced tree, so a filter with a thousand keys stays
  far inside SQLite's expression depth limit (1000).

Every key path and value is a bound parameter; nothing a caller supplies is
spliced into the SQL text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

Part = tuple[str, tuple[Any, ...]]
TRUE: Part = ("1", ())
FALSE: Part = ("0", ())
_SLACK = 1e-9
_I64 = 2**63
_NUL_ESCAPE = "\\u0000"  # how a NUL inside a string appears in stored JSON
# Strings every JSON encoder writes verbatim between quotes: no escapes, no '/', '<', '>', '&'.
_VERBATIM = re.compile(r"[A-Za-z0-9 _.,:;!?#$%()*+=@^{|}~'\-]+")
_MAX_NEEDLES = 3
_MAX_PARAMS = 2000
_MAX_DEPTH = 64


def filter_condition(filter_: Mapping[str, Any] | None, column: str = "items.value") -> Part:
    """(SQL, params): true for every row whose JSON ``column`` could pass ``filter_``.

    ``column`` is a trusted column name; ``filter_`` must already have passed
    ``_query.check_filter``.
    """
    if not filter_:
        return TRUE
    part = TRUE  # past SQLite's limits on expression depth and variables, Python decides
    if _depth(filter_) <= _MAX_DEPTH:
        part = _all([_match(column, _child("$", k), v) for k, v in filter_.items()])
        part = TRUE if len(part[1]) > _MAX_PARAMS else part
    needles = list(dict.fromkeys(n for v in filter_.values() for n in _needles(v)))
    needles = needles[:_MAX_NEEDLES]
    if part == FALSE or (part == TRUE and not needles):
        return part
    sql = "CASE "
    if needles:
        sql += "WHEN " + " OR ".join(f"instr({column}, ?) = 0" for _ in needles) + " THEN 0 "
    if part != TRUE:
        sql += f"WHEN json_valid({column}) THEN ({part[0]}) "
    return sql + "ELSE 1 END", (*(json.dumps(n) for n in needles), *part[1])


def _needles(wanted: Any) -> list[str]:
    """Strings a matching item's JSON must hold (``kind == "fact"`` needs ``"fact"``)."""
    if isinstance(wanted, str):
        return [wanted] if _VERBATIM.fullmatch(wanted) else []
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return _needles(wanted["$eq"]) if "$eq" in wanted else []
        return [n for v in wanted.values() for n in _needles(v)]
    if isinstance(wanted, list | tuple):
        return [n for v in wanted for n in _needles(v)]
    return []


def _depth(value: Any) -> int:
    if isinstance(value, Mapping):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _all(parts: list[Part]) -> Part:
    kept = [p for p in parts if p != TRUE]
    if FALSE in kept:
        return FALSE
    if not kept:
        return TRUE
    return _balanced(kept)


def _balanced(parts: list[Part]) -> Part:
    """``a AND b AND ...`` nested as a balanced tree: depth log2(n), not n."""
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    (left, left_args), (right, right_args) = _balanced(parts[:half]), _balanced(parts[half:])
    return f"({left}) AND ({right})", (*left_args, *right_args)


def _child(path: str | None, key: Any) -> str | None:
    """The JSON path of ``key`` under ``path``, or None when SQLite could not name it exactly."""
    if path is None or not isinstance(key, str):
        return None
    if '"' in key or "\\" in key or any(ord(ch) < 0x20 for ch in key) or not _encodable(key):
        return None
    return f'{path}."{key}"'


def _match(col: str, path: str | None, wanted: Any) -> Part:
    """Superset of ``_query._compare(value at path, wanted)``; a missing key reads as None."""
    if path is None:
        return TRUE
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return _all([_operator(col, path, op, arg) for op, arg in wanted.items()])
        children = [_match(col, _child(path, k), v) for k, v in wanted.items()]
        # Shapes come last: AND stops early, so they are read only for rows still in play.
        return _all([*children, (f"json_type({col}, ?) IS 'object'", (path,))])
    if isinstance(wanted, list | tuple):
        if not wanted:  # json_array_length is 0 for a non-array, never len(wanted) > 0
            return f"json_type({col}, ?) IS 'array'", (path,)
        items = [_match(col, f"{path}[{i}]", w) for i, w in enumerate(wanted)]
        return _all([*items, (f"json_array_length({col}, ?) = ?", (path, len(wanted)))])
    return _equal(col, path, wanted, loose=True)[0]


def _operator(col: str, path: str, op: str, arg: Any) -> Part:
    if op == "$eq":
        return _equal(col, path, arg, loose=True)[0]
    if op == "$ne":
        sql, args = _equal(col, path, arg, loose=True)[1]
        return TRUE if (sql, args) == FALSE else (f"NOT coalesce(({sql}), 0)", args)
    try:
        bound = float(arg)
    except (TypeError, ValueError):
        return FALSE  # Python's float(arg) fails: no row passes
    except OverflowError:
        return TRUE  # Python raises for the rows that reach it; let it
    if math.isnan(bound):
        return FALSE
    x = f"json_extract({col}, ?)"
    if op in ("$gt", "$gte"):
        # Every text sorts above every number, so strings (maybe numeric) are kept.
        return f"{x} > ?", (path, _below(bound))
    # Below the bound, or a string: outside [bound, +inf] by SQLite's ordering.
    return f"NOT ({x} BETWEEN ? AND 9e999)", (path, _above(bound))


def _below(bound: float) -> float:
    return bound if math.isinf(bound) else bound - abs(bound) * _SLACK - 1e-300


def _above(bound: float) -> float:
    return bound if math.isinf(bound) else bound + abs(bound) * _SLACK + 1e-300


def _equal(col: str, path: str, arg: Any, loose: bool) -> tuple[Part, Part]:
    """(superset, subset) of Python's ``actual == arg`` for the value at ``path``.

    The subset is what ``$ne`` negates. ``loose``: a missing key reads as None
    (the top of a comparison), not inside ``$eq``'s lists and dicts.
    """
    x = f"json_extract({col}, ?)"
    if arg is None:
        part: Part = (f"{x} IS NULL", (path,))
        if not loose:
            part = (f"json_type({col}, ?) IS 'null'", (path,))
        return part, part
    if isinstance(arg, bool | int | float):
        try:
            number = float(arg)
        except OverflowError:
            return TRUE, FALSE
        if math.isnan(number):
            return FALSE, FALSE  # NaN equals nothing, not even a NaN read back from JSON
        if math.isinf(number):  # json.dumps's Infinity is no JSON to SQLite: such rows skip this
            return (f"{x} IS ?", (path, number)), (f"{x} IS ?", (path, number))
        sup = (f"{x} BETWEEN ? AND ?", (path, _below(number), _above(number)))
        exact = int(arg) if isinstance(arg, int) else int(number) if number.is_integer() else None
        if exact is None or not -_I64 <= exact < _I64:
            return sup, FALSE
        return sup, (f"typeof({x}) IS 'integer' AND {x} IS ?", (path, path, exact))
    if isinstance(arg, str):
        if not _encodable(arg):
            return FALSE, FALSE  # a lone surrogate: no stored string holds one
        if "\x00" in arg:  # SQLite reads a stored string only up to its NUL
            return (f"{x} IS ?", (path, arg.split("\x00")[0])), FALSE
        return (f"{x} IS ?", (path, arg)), (
            f"{x} IS ? AND json_type({col}, ?) IS 'text' AND instr({col}, ?) = 0",
            (path, arg, path, _NUL_ESCAPE),
        )
    if isinstance(arg, tuple):
        return FALSE, FALSE  # a JSON array loads as a list, and a list never equals a tuple
    if isinstance(arg, list):
        elements = [_equal(col, f"{path}[{i}]", a, loose=False) for i, a in enumerate(arg)]
        array: Part = (
            f"json_array_length({col}, ?) IS ? AND json_type({col}, ?) IS 'array'",
            (path, len(arg), path),
        )
        return _all([*(e[0] for e in elements), array]), _all([*(e[1] for e in elements), array])
    if isinstance(arg, dict):
        if not all(isinstance(k, str) for k in arg):
            return FALSE, FALSE  # JSON object keys are strings
        named = [(_child(path, k), a) for k, a in arg.items()]
        children = [_equal(col, p, a, loose=False) for p, a in named if p is not None]
        shape = (f"json_type({col}, ?) IS 'object'", (path,))
        sup = _all([*(c[0] for c in children), shape])
        if len(children) < len(named):
            return sup, FALSE
        size = (f"(SELECT count(*) FROM json_each({col}, ?)) IS ?", (path, len(arg)))
        return sup, _all([*(c[1] for c in children), shape, size])
    return TRUE, FALSE  # some other Python type: only Python knows its ==


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
