"""The writer's answer, checked in code against the quotes it cites.

A small model phrasing an answer from findings mixes them up: it moves a number from one
finding to another's subject ("a queen lives four to six months", cited to a page about
workers) or adds one from its own knowledge. So each sentence of the answer is kept only
when a verified finding's quote supports it: every number in it is in the quote, and so
are its names, units and negations ("decades", "never", "not", "don't"); then either the
sentence is in the quote (the verifier's exact/fuzzy presence check), or the quote holds
three quarters of its words and every word it shares with the question (the answer's
subject must come from the quote, not from the question), with its numbers in the same
clause as those words (a quote about a worker and a queen lends neither's number to the
other). Its citation is set to that finding. When no sentence survives, the writer
gives the claims that answer the question as verified, or says it could not verify an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memshelf.memory.guard import sentences, specifics
from memshelf.team.text import numbers, same_word, stem, terms
from memshelf.team.text import words as content_words
from memshelf.team.verify import quote_in

_CITATION = re.compile(r"\s*\[(\d+)\]")
_LEADING = re.compile(r"^(\s*\[\d+\])+[.,;]?")
# Words a writer adds to frame an answer ("according to the verified findings"); they
# state no fact, so they need no support.
_FRAMING = frozenset(
    terms(
        "according team team's finding findings source sources verified verify quote quoted "
        "say says said state states stated report reports reported note notes page pages "
        "usually typically generally about around approximately roughly"
    )
)
# Words that make a number or a statement what it is: "decades" is not "years", "never"
# is not "always", "rarely" and "only" are not the plain statement, "more than" is not
# "up to". An answer sentence holding one must find it in the quote.
_EXACT = frozenset(
    terms(
        "second seconds minute minutes hour hours day days week weeks month months year years "
        "decade decades century centuries metre metres meter meters kilometre kilometres km "
        "mile miles gram grams kilogram kilograms kg percent per cent times never always none "
        "nothing nobody cannot without rarely seldom hardly barely scarcely less more least "
        "most fewer"
    )
) | {"no", "not", "only"}
SHARE = 0.75  # of an answer sentence's words that its quote must hold (rewording is allowed)
# A finding sharing two of the question's words (one, for a question of one or two; a
# word meets its stem or a compound ending with it: "bees" meets "honeybees") is shown
# to the writer and keeps the supervisor from researching again: "How do honeybees show
# nestmates the direction of food?" meets "Foragers ... tell their nestmates where food
# is". Given verbatim as the answer, when no phrased sentence holds, a claim must hold
# 60% of them (two of three). The claim was verified, so that answer is a source's own
# statement, cited; a question of three words can still meet a claim about something
# else ("queen honeybee live" meets "a worker honeybee lives ..."), which is then given
# as what it is, a statement about workers, never reworded into one about queens.
RELATED_WORDS = 2
ANSWERS = 0.6


@dataclass(frozen=True)
class Sentence:
    """One checked answer sentence and the finding (0-based index) that supports it."""

    text: str
    finding: int


# "don't", "can\u2019t" (a typographic apostrophe), "cannot": each a "not"
_NOT = re.compile(r"n[\u2019']t\b|\bcannot\b")


def _exact_words(text: str) -> set[str]:
    text = _NOT.sub(" not", text.lower())
    lowered = re.findall(r"[a-z]+", text)
    return {w for w in lowered if w in ("no", "not", "only")} | (set(terms(text)) & _EXACT)


def _support_words(text: str) -> set[str]:
    return {w[:4] for w in terms(text)}


def supports(sentence: str, quote: str, question: str = "") -> bool:
    """Whether ``quote`` states what ``sentence`` says (see the module docstring)."""
    body = _CITATION.sub("", sentence).strip()
    if not body:
        return False
    # numbers, names and negations first: a fuzzy match of the whole sentence tolerates
    # a few changed characters, which is exactly "six" → "sixty" or an added "not"
    if not numbers(body) <= numbers(quote):
        return False
    lowered = quote.lower()
    if any(n not in lowered for n in specifics(body) if not n[0].isdigit()):
        return False
    exact = _exact_words(body)
    if not exact <= _exact_words(quote):
        return False
    if len(body.split()) >= 4 and quote_in(body, quote) is not None:
        return True
    said = _support_words(quote)
    words = _support_words(body) - {w[:4] for w in _FRAMING}
    if not words:
        return False
    if sum(w in said for w in words) / len(words) < SHARE:
        return False
    asked = words & _support_words(question)
    if not asked <= said:
        return False
    return _bound(numbers(body), asked, quote)


# Where a quote changes subject: "A worker lives six weeks, while the queen lives ..."
# (not at every comma: "the queen, a fertile female, lives ..." is one subject)
_CLAUSE = re.compile(r";|,\s*and\b|\b(?:while|whereas|but|although|though)\b", re.IGNORECASE)


def _bound(said_numbers: set[str], asked: set[str], quote: str) -> bool:
    """Whether one clause of ``quote`` holds the sentence's numbers together with its
    words from the question: a quote about two subjects does not lend one's number to
    the other ("the queen lives about six weeks" from "a worker lives about six weeks
    in summer, while the queen lives three to five years")."""
    if not said_numbers or not asked:
        return True
    return any(
        said_numbers <= numbers(clause) and asked <= _support_words(clause)
        for clause in _CLAUSE.split(quote)
    )


def cited(sentence: str) -> list[int]:
    """The 0-based finding numbers a sentence cites ("[2]" → 1)."""
    return [int(n) - 1 for n in _CITATION.findall(sentence)]


def segments(draft: str) -> list[str]:
    """The draft's sentences, each with its citations ("... years. [1] Next" puts the
    [1] with the first sentence, where it belongs)."""
    out: list[str] = []
    for part in sentences(" ".join(draft.split())):
        lead = _LEADING.match(part)
        if lead and out:
            out[-1] += " " + lead.group(0).strip()
            part = part[lead.end() :]
        if part.strip() and (_CITATION.sub("", part).strip() or not out):
            out.append(part.strip())
    return out


def check_answer(
    draft: str, quotes: Sequence[str], question: str
) -> tuple[list[Sentence], list[str]]:
    """The draft's sentences that a quote supports, each with the finding that does (the
    one it cites when that one supports it, else the first that does), and the dropped
    sentences that none supports."""
    kept: list[Sentence] = []
    dropped: list[str] = []
    for raw in segments(draft):
        body = _CITATION.sub("", raw).strip()
        order = [i for i in cited(raw) if 0 <= i < len(quotes)]
        order += [i for i in range(len(quotes)) if i not in order]
        match = next((i for i in order if supports(body, quotes[i], question)), None)
        if match is None:
            dropped.append(raw)
        else:
            kept.append(Sentence(body, match))
    return kept, dropped


def _shared(question: str, claim: str, *, compounds: bool = False) -> tuple[int, int]:
    """(question words the claim holds, question words), a word counted once per stem
    and met by the claim's same stem, or with ``compounds`` also by a compound ending
    with it (see :func:`same_word`)."""
    asked = {stem(w): w for w in content_words(question, query=True)}
    said = set(content_words(claim))
    if not compounds:
        stems = {stem(c) for c in said}
        return sum(s in stems for s in asked), len(asked)
    return sum(any(same_word(w, c) for c in said) for w in asked.values()), len(asked)


def coverage(question: str, claim: str) -> float:
    """Share of the question's words (question phrasing left out) that the claim holds,
    by stem only: a compound match ("ant" in "elephant") must never let a claim answer
    a question unread, only show it to the writer (:func:`related`)."""
    shared, total = _shared(question, claim)
    return shared / total if total else 0.0


def related(question: str, findings: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of the findings sharing :data:`RELATED_WORDS` of the question's words (one,
    for a question of one or two: "How far do bees forage?" asks about bees foraging, and
    a finding on foraging is about it), most shared first; equal ones keep the findings'
    order."""
    scored = []
    for i, f in enumerate(findings):
        shared, total = _shared(question, str(f["claim"]), compounds=True)
        if shared and shared >= (1 if total <= RELATED_WORDS else RELATED_WORDS):
            scored.append((shared, i))
    return [i for _, i in sorted(scored, key=lambda s: -s[0])]


def answering(question: str, findings: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of the findings whose claim holds :data:`ANSWERS` of the question's words:
    given as they were verified when the writer's own sentences do not hold."""
    return [i for i, f in enumerate(findings) if coverage(question, str(f["claim"])) >= ANSWERS]
