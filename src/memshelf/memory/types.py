"""What a stored memory looks like: one distilled fact per entry, with its provenance."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KIND_FACT = "fact"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".!")


def fact_key(text: str) -> str:
    """Same fact, same key: saving a fact twice updates it instead of duplicating it."""
    return "f_" + hashlib.sha256(_norm(text).encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Provenance:
    """Where a fact came from: the thread and message that stated it, and when."""

    thread_id: str | None = None
    message_id: str | None = None
    source: str = "extraction"
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "message_id": self.message_id,
            "source": self.source,
            "at": self.at,
        }


def fact_value(text: str, provenance: Provenance, kind: str = KIND_FACT) -> dict[str, Any]:
    return {"text": text, "kind": kind, "provenance": provenance.as_dict()}


@dataclass(frozen=True)
class RecalledFact:
    key: str
    text: str
    score: float | None
