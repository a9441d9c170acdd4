"""The LoCoMo benchmark's data (Maharana et al., ACL 2024), as plain dataclasses.

Any file in the format of ``locomo10.json`` works: a list of conversations,
each with ``session_N`` turn lists, ``session_N_date_time`` stamps and ``qa``
items naming their evidence ``dia_id``s. Category 5 (adversarial: no answer in
the conversation) is left out of scores, as the published comparisons do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memshelf.errors import ConfigurationError

SCORED_CATEGORIES = (1, 2, 3, 4)
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
_SESSION = re.compile(r"^session_(\d+)$")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    date: str
    caption: str | None = None


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def scored_questions(self) -> list[Question]:
        return [q for q in self.questions if q.category in SCORED_CATEGORIES and q.evidence]


def _turns(conv: dict[str, Any]) -> list[Turn]:
    sessions = sorted(int(m.group(1)) for key in conv if (m := _SESSION.match(key)) and conv[key])
    turns = []
    for n in sessions:
        date = str(conv.get(f"session_{n}_date_time", ""))
        for raw in conv[f"session_{n}"]:
            turns.append(
                Turn(
                    dia_id=str(raw["dia_id"]),
                    speaker=str(raw.get("speaker", "")),
                    text=str(raw.get("text", "")),
                    session=n,
                    date=date,
                    caption=raw.get("blip_caption"),
                )
            )
    return turns


def load(path: Path) -> list[Conversation]:
    """Read a LoCoMo-format file; errors name what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read LoCoMo data from {path}: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigurationError(f"{path}: expected a JSON list of conversations.")
    out = []
    for i, item in enumerate(data):
        try:
            conv = item["conversation"]
            questions = [
                Question(
                    question=str(q["question"]),
                    answer=str(q.get("answer", q.get("adversarial_answer", ""))),
                    evidence=tuple(str(e) for e in q.get("evidence") or ()),
                    category=int(q["category"]),
                )
                for q in item.get("qa", [])
            ]
            out.append(
                Conversation(
                    sample_id=str(item.get("sample_id", f"conv-{i}")),
                    speakers=(str(conv.get("speaker_a", "")), str(conv.get("speaker_b", ""))),
                    turns=_turns(conv),
                    questions=questions,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path}: conversation {i} is malformed ({exc}).") from exc
    return out


def select(conversations: list[Conversation], spec: str | None) -> list[Conversation]:
    """``"0-4"``, ``"1,3"`` or None (all): by position in the file."""
    if not spec:
        return conversations
    picked: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigurationError(
                f"--conversations takes positions in the file such as 0-4 or 1,3; got {spec!r}."
            ) from None
        if last < first:
            raise ConfigurationError(
                f"--conversations {spec!r} selects nothing: write the lower position first."
            )
        picked.extend(range(first, last + 1))
    bad = [i for i in picked if not 0 <= i < len(conversations)]
    if bad:
        raise ConfigurationError(f"No conversation {bad[0]}: the file has {len(conversations)}.")
    return [conversations[i] for i in picked]
