"""Words, numbers and lexical ranking shared by the team's search, researcher and writer.

One tokeniser for every place the team compares a question with text, so "lives",
"live" and "living" meet, "2,000" meets "2000", "five" meets "5", and the words that
only shape a question ("how long", "what is") do not decide which page is read.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
STOP = frozenset(
    "a an the and or of to in on at for with is are was were be been being by do does did "
    "how what which who whom whose why when where it its this that these those from as "
    "their there they them other each about tell can could should would will shall may "
    "might must has have had not no into than then so such also only very".split()
)
# "how long does ...": the second word asks for a kind of answer (a duration, a count);
# it is rarely a word of the answer's page, so it must not pick the page.
_QUESTION_PHRASE = re.compile(r"\bhow (long|many|much|often|far|big|old|fast|large|high)\b")
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "dozen": "12",
    "half": "0.5",
}
STEM_CHARS = 6


def stem(word: str) -> str:
    """A light stem: plural, -ing, -ed and a final e dropped, then cut to 6 characters,
    so "lives", "lived", "living" and "live" are one word, and "queens" is "queen"."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + keep
            break
    else:
        if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
            w = w[:-1]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w[:STEM_CHARS]


def _number(token: str) -> str | None:
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    if token[0].isdigit():
        return token.replace(",", "").rstrip(".")
    return None


def numbers(text: str) -> set[str]:
    """Every number in a text, digits or words, normalised ("2,000" → 2000, "five" → 5)."""
    found = (_number(t) for t in _WORD.findall(text.lower()))
    return {n for n in found if n is not None}


def words(text: str, *, query: bool = False) -> list[str]:
    """The text's content words as written (lower case), numbers left out.
    ``query=True`` also drops question phrasing ("how long")."""
    lowered = text.lower()
    if query:
        lowered = _QUESTION_PHRASE.sub(" ", lowered)
    return [
        t for t in _WORD.findall(lowered) if t not in STOP and _number(t) is None and len(t) > 1
    ]


def terms(text: str, *, query: bool = False) -> list[str]:
    """The text's content words, stemmed, numbers left out. ``query=True`` also drops
    question phrasing ("how long")."""
    return [stem(t) for t in words(text, query=query)]


COMPOUND_TAIL = 3  # "bee" in "honeybee": the shortest word a compound may end with
COMPOUND_HEAD = 3  # and the shortest part before it ("honey"; "see" is not a compound of "e")


def _singular(word: str) -> str:
    w = word[:-2] if word.endswith("'s") else word
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    return w


def same_word(a: str, b: str) -> bool:
    """Whether two words (as written) name the same thing: one stem ("lives", "living"),
    or one is a compound ending with the other ("honeybees" and "bees", "queen bee" and
    "honeybee"), so a question in plain words meets the source's compound. Only for
    choosing which findings a question is about; what an answer may say is checked
    against the quote word by word (:mod:`memshelf.team.grounding`)."""
    if stem(a) == stem(b):
        return True
    short, long = sorted((_singular(a.lower()), _singular(b.lower())), key=len)
    return (
        len(short) >= COMPOUND_TAIL
        and len(long) - len(short) >= COMPOUND_HEAD
        and long.endswith(short)
    )


TITLE_WEIGHT = 2.0  # a word of the title counts three times: the title says what a page is about


def rank(query: str, docs: Mapping[str, tuple[str, str]], limit: int = 3) -> list[str]:
    """Names of the ``docs`` (name → (title, text)) that best match ``query``, best first.

    Each shared word weighs its rarity over these docs (idf), more when the text repeats
    it (log of its count) and three times when it is in the title; a doc's sum is scaled
    by the square root of the share of the query's words it holds, so a page holding
    every word of the question beats one that holds a single rare word."""
    words = set(terms(query, query=True))
    if not words or not docs:
        return []
    titles = {name: set(terms(title)) for name, (title, _) in docs.items()}
    counts = {name: Counter(terms(text)) for name, (_, text) in docs.items()}
    df = {w: sum(w in titles[n] or w in counts[n] for n in docs) for w in words}
    scored: list[tuple[float, str]] = []
    for name in docs:
        shared = {w for w in words if w in titles[name] or counts[name][w]}
        if not shared:
            continue
        weight = sum(
            math.log(1 + len(docs) / df[w])
            * (1 + TITLE_WEIGHT * (w in titles[name]))
            * (1 + math.log(1 + counts[name][w]))
            for w in shared
        )
        scored.append((weight * math.sqrt(len(shared) / len(words)), name))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [name for _, name in scored[:limit]]
