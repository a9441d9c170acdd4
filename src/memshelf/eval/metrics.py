"""Retrieval and answer metrics: evidence recall@k, latency percentiles, token F1."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence


def evidence_recall(
    evidence: Iterable[str], ranked_sources: Sequence[Iterable[str]], k: int
) -> float:
    """Share of the evidence ids found among the sources of the top-k results."""
    wanted = set(evidence)
    if not wanted:
        return 0.0
    found: set[str] = set()
    for sources in ranked_sources[:k]:
        found.update(sources)
    return len(wanted & found) / len(wanted)


def percentile(samples: Sequence[float], p: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _tokens(text: str) -> list[str]:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the|and)\b", " ", text)
    return text.split()


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style token F1 between an answer and the gold answer."""
    pred, ref = _tokens(prediction), _tokens(gold)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if not pred or not ref or same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)
