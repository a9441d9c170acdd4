"""Query and ranking code shared by every memshelf store backend.

Backends store and fetch; what counts as a match (filters, namespace
conditions), which texts an item is indexed by, how keyword queries are
formed and how dense and keyword scores are fused lives here, once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langgraph.store.base import MatchCondition, get_text_at_path, tokenize_path

from memshelf.namespaces import validate_namespace

SEP = "."  # LangGraph forbids '.' inside labels, so joining with it is injective.
DEFAULT_KEYWORD_WEIGHT = 0.3
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to say anything about which memory is meant.
STOPWORDS = frozenset(
    (
        "a an and are as at be but by can did do does for from had has have how i im is it its "
        "me my of on or our so that the their them they this to was we were what when where "
        "which who why will with you your"
    ).split()
)


def encode_ns(namespace: Sequence[str]) -> str:
    validate_namespace(tuple(namespace))
    return SEP.join(namespace)


def decode_ns(encoded: str) -> tuple[str, ...]:
    return tuple(encoded.split(SEP))


def ns_range(prefix: Sequence[str]) -> tuple[str, str, str]:
    """(exact, low, high): a namespace under ``prefix`` equals exact or lies in [low, high).

    Binary string order puts every ``exact + '.' + ...`` between ``exact + '.'`` and
    ``exact + '/'`` ('/' follows '.'), and nothing else there: no LIKE, no wildcards.
    """
    exact = encode_ns(prefix)
    return exact, exact + SEP, exact + chr(ord(SEP) + 1)


def ns_tags(namespace: Sequence[str]) -> list[str]:
    """One opaque token per namespace prefix, so a keyword index can be scoped to a prefix."""
    return [prefix_tag(namespace[: i + 1]) for i in range(len(namespace))]


def prefix_tag(prefix: Sequence[str]) -> str:
    return "ns" + hashlib.blake2b(SEP.join(prefix).encode("utf-8"), digest_size=10).hexdigest()


def keyword_terms(query: str, limit: int = 32) -> list[str]:
    """Distinct lower-cased content words, in order; punctuation never reaches a query parser."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:limit]


def does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """LangGraph's namespace condition: prefix or suffix, '*' matching any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type {condition.match_type!r}; use prefix or suffix.")
    return all(p == "*" or n == p for n, p in pairs)


def order_key(namespace: Sequence[str]) -> bytes:
    """Bytes ordered as the namespace tuples are: labels joined by NUL, which no label holds.

    Joined by ``SEP`` they would not sort like tuples: ``('a', 'b') < ('a-c',)`` but
    ``'a-c' < 'a.b'``, as ``'-'`` and ``'%'`` (in every encoded user id) sort before ``'.'``.
    """
    return "\x00".join(namespace).encode("utf-8")


def fixed_prefix(conditions: Sequence[MatchCondition]) -> tuple[str, ...]:
    """Leading labels every matching namespace must start with (the longest wildcard-free run)."""
    best: tuple[str, ...] = ()
    for condition in conditions:
        if condition.match_type != "prefix":
            continue
        path = tuple(condition.path)
        run = path[: path.index("*")] if "*" in path else path
        best = run if len(run) > len(best) else best
    return best


def list_namespaces(
    namespaces: Iterable[tuple[str, ...]],
    conditions: Sequence[MatchCondition] | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> list[tuple[str, ...]]:
    found = [ns for ns in namespaces if all(does_match(c, ns) for c in conditions or ())]
    result = (
        sorted({ns[:max_depth] for ns in found}) if max_depth is not None else sorted(set(found))
    )
    return result[offset : offset + limit]


def matches_filter(value: Mapping[str, Any], filter_: Mapping[str, Any] | None) -> bool:
    """LangGraph's JSON filter: nested equality plus $eq/$ne/$gt/$gte/$lt/$lte."""
    if not filter_:
        return True
    return all(_compare(value.get(k), v) for k, v in filter_.items())


FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def check_filter(filter_: Mapping[str, Any] | None) -> None:
    """Reject an unknown operator up front, not only when some item's value reaches it."""

    def walk(wanted: Any) -> None:
        if isinstance(wanted, Mapping):
            if any(str(k).startswith("$") for k in wanted):
                for op in wanted:
                    if op not in FILTER_OPERATORS:
                        raise ValueError(
                            f"Unsupported filter operator {op!r}; use $eq, $ne, $gt, $gte, "
                            "$lt or $lte."
                        )
                return
            for value in wanted.values():
                walk(value)
        elif isinstance(wanted, list | tuple):
            for value in wanted:
                walk(value)

    for value in (filter_ or {}).values():
        walk(value)


def _compare(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_apply(actual, op, arg) for op, arg in wanted.items())
        return isinstance(actual, Mapping) and all(
            _compare(actual.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(wanted)
            and all(_compare(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def _apply(actual: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(actual == arg)
    if op == "$ne":
        return bool(actual != arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        try:
            a, b = float(actual), float(arg)
        except (TypeError, ValueError):
            return False
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    raise ValueError(f"Unsupported filter operator {op!r}; use $eq, $ne, $gt, $gte, $lt or $lte.")


def tokenized_fields(fields: Sequence[str] | None) -> list[tuple[str, Any]]:
    return [(f, tokenize_path(f)) if f != "$" else (f, f) for f in (fields or ["$"])]


def texts_to_index(
    value: Mapping[str, Any],
    index: bool | Sequence[str] | None,
    default_fields: list[tuple[str, Any]],
) -> list[tuple[str, str]]:
    """(path, text) pairs an item is indexed by: the store's fields, the put's own, or none."""
    if index is False:
        return []
    fields = default_fields if index is None or index is True else tokenized_fields(list(index))
    pairs: list[tuple[str, str]] = []
    for path, tokens in fields:
        texts = [t for t in get_text_at_path(dict(value), tokens) if t]
        if len(texts) == 1:
            pairs.append((path, texts[0]))
        else:
            pairs.extend((f"{path}.{i}", text) for i, text in enumerate(texts))
    return pairs


def fuse(dense: float | None, keyword: float | None, keyword_weight: float) -> float | None:
    """Hybrid score: cosine similarity plus a weighted keyword score in [0, 1]."""
    if dense is None and keyword is None:
        return None
    if dense is None:
        return keyword_weight * (keyword or 0.0)
    return (1.0 - keyword_weight) * dense + keyword_weight * (keyword or 0.0)


def content_words(text: str) -> frozenset[str]:
    """The distinct lower-cased non-stopwords of a text: what near-duplicate checks compare."""
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap of two word sets in [0, 1] (0 when both are empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Any]], k: int = 60
) -> list[tuple[Any, float]]:
    """(key, score) best first, score = the sum of 1/(k + rank) over the rankings.

    Scale-free (Cormack et al., 2009): a keyword score and a cosine never have to be
    put on one scale. Ties keep the order of first appearance."""
    score: dict[Any, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            score[key] = score.get(key, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score.items(), key=lambda pair: -pair[1])
