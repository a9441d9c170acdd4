"""What a stored memory looks like: one distilled fact per entry, with provenance,
a kind, an optional validity window, a status and a version (its history lives
beside it, see :mod:`memshelf.memory.history`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["profile", "preference", "fact", "event", "plan", "relationship", "instruction"]
KINDS: tuple[str, ...] = (
    "profile",
    "preference",
    "fact",
    "event",
    "plan",
    "relationship",
    "instruction",
)
KIND_FACT = "fact"
ACTIVE = "active"
SUPERSEDED = "superseded"
# A search filter that keeps current memories (and those stored before statuses existed).
CURRENT: dict[str, Any] = {"status": {"$ne": SUPERSEDED}}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".!")


def fact_key(text: str) -> str:
    """Same fact, same key: saving a fact twice updates it instead of duplicating it."""
    return "f_" + hashlib.sha256(_norm(text).encode("utf-8")).hexdigest()[:24]


def same_wording(a: str, b: str) -> bool:
    """Equal after case, spacing and end punctuation are ignored."""
    return _norm(a) == _norm(b)


@dataclass(frozen=True)
class Provenance:
    """Where a fact came from: the thread and message that stated it, who wrote it, when.

    ``source`` is the actor: ``extraction`` (with ``model``), ``tool``, ``cli``, ``api``.
    """

    thread_id: str | None = None
    message_id: str | None = None
    source: str = "extraction"
    at: str = field(default_factory=now_iso)
    model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "message_id": self.message_id,
            "source": self.source,
            "at": self.at,
            **({"model": self.model} if self.model else {}),
        }


@dataclass(frozen=True)
class Fact:
    """A candidate memory: what extraction (or a person) says should be remembered."""

    text: str
    kind: str = KIND_FACT
    valid_from: str | None = None
    valid_to: str | None = None


def fact_value(
    fact: Fact | str, provenance: Provenance, kind: str = KIND_FACT, *, pinned: bool = False
) -> dict[str, Any]:
    """The stored value of a new memory (version 1, active)."""
    if isinstance(fact, str):
        fact = Fact(fact, kind)
    value: dict[str, Any] = {
        "text": fact.text,
        "kind": fact.kind,
        "status": ACTIVE,
        "version": 1,
        "provenance": provenance.as_dict(),
    }
    if fact.valid_from:
        value["valid_from"] = fact.valid_from
    if fact.valid_to:
        value["valid_to"] = fact.valid_to
    if pinned:
        value["pinned"] = True
    return value


@dataclass(frozen=True)
class RecalledFact:
    key: str
    text: str
    score: float | None
    kind: str = KIND_FACT
    valid_from: str | None = None
    valid_to: str | None = None

    @property
    def shown(self) -> str:
        """The text as the model sees it: dated facts carry their dates, and the user's
        instructions to the agent are marked as their stated preference."""
        text = self.text
        if self.valid_from or self.valid_to:
            span = " to ".join(d for d in (self.valid_from, self.valid_to) if d)
            text = f"{text} [{span}]"
        if self.kind == "instruction":
            text = f"(the user's stated preference for your answers) {text}"
        return text
