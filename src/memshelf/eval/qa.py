"""``memshelf eval qa``: answer LoCoMo questions from recalled memories, then grade them.

The answer model sees only the top-k memories recalled for the question. Two
sources of memories, on the same questions:

- ``turns``: every dialogue turn stored as it was said (with its session date),
  searched as ``memshelf eval locomo`` does (``LOCOMO_RANKING``);
- ``facts``: what the memory engine remembers of the conversation. Each turn, in
  order, goes through the engine's extraction (the turn's speaker as the user, as
  ``eval locomo --mode facts``) and every fact through consolidation (ADD / UPDATE /
  SUPERSEDE / NOOP against the shelf so far), as the background writer does; the
  question then goes through the agent's ``recall`` (current facts only). Each fact
  is shown with the date of the turn it came from (its provenance).

``limit_sessions`` cuts every conversation to its first N sessions and keeps only
the questions whose evidence lies entirely inside them, so the slice is fair to
both modes. Grading: token F1 against the gold answer, and an LLM judge deciding
whether the answer is correct (the "J" metric of the Mem0 paper). Any chat model
can answer or judge; a hosted one is advised for judging, the local one works for
a smoke test.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from memshelf.errors import ConfigurationError
from memshelf.eval.locomo import Conversation
from memshelf.eval.metrics import token_f1
from memshelf.eval.runner import LOCOMO_RANKING, Progress, turn_facts, turn_store
from memshelf.memory.consolidate import consolidate
from memshelf.memory.guard import quote_facts
from memshelf.memory.recall import recall, search_ranked
from memshelf.memory.types import CURRENT, SUPERSEDED, Provenance
from memshelf.memory.writer import model_id
from memshelf.namespaces import memories_namespace
from memshelf.stores import DEFAULT_FIELDS
from memshelf.stores.sqlite import SqliteStore

ANSWER_SYSTEM = (
    "Answer the question about the people in a conversation using only the memories "
    "below. Give a short answer (a few words or a date), no explanation.\n\n"
)
JUDGE_SYSTEM = (
    "You grade answers. Given a question, the gold answer and a candidate answer, decide "
    "whether the candidate is correct: it may be shorter, paraphrased or formatted "
    "differently, but it must mean the same thing (dates must name the same time). "
    'Reply with JSON {"correct": true} or {"correct": false}.'
)
MODES = ("turns", "facts")
# facts mode: k alone limits what is shown, as in turns mode (the agent's default budget
# of 1,200 characters would make the comparison one of prompt size, not of memories)
FACTS_CHAR_BUDGET = 100_000

Recaller = Callable[[str], list[str]]


class Verdict(BaseModel):
    correct: bool


def answer(model: BaseChatModel, memories: Sequence[str], question: str) -> str:
    reply = model.invoke(
        [SystemMessage(ANSWER_SYSTEM + quote_facts(list(memories))), HumanMessage(question)]
    )
    return str(reply.text).strip()


def judge(model: BaseChatModel, question: str, gold: str, candidate: str) -> bool:
    verdict = model.with_structured_output(Verdict).invoke(
        [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(f"Question: {question}\nGold answer: {gold}\nCandidate: {candidate}"),
        ]
    )
    return (
        Verdict.model_validate(verdict).correct
        if isinstance(verdict, dict)
        else bool(getattr(verdict, "correct", False))
    )


def qa_modes(mode: str) -> tuple[str, ...]:
    """``turns``, ``facts`` or ``both`` (turns then facts, on the same questions)."""
    if mode == "both":
        return MODES
    if mode not in MODES:
        raise ConfigurationError(f"Unknown mode {mode!r}. Use --mode turns, facts or both.")
    return (mode,)


def session_slice(conv: Conversation, sessions: int | None) -> Conversation:
    """The conversation cut to its first ``sessions`` sessions, keeping only the questions
    whose every evidence turn lies inside them (all of it when ``sessions`` is None)."""
    if sessions is None:
        return conv
    if sessions < 1:
        raise ConfigurationError(f"--limit-sessions must be at least 1, got {sessions}.")
    wanted = set(sorted({t.session for t in conv.turns})[:sessions])
    turns = [t for t in conv.turns if t.session in wanted]
    inside = {t.dia_id for t in turns}
    questions = [q for q in conv.questions if q.evidence and set(q.evidence) <= inside]
    return replace(conv, turns=turns, questions=questions)


@dataclass
class ShelfStats:
    """What the memory engine made of the conversations (facts mode)."""

    turns: int = 0
    facts_extracted: int = 0
    seconds: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)
    by_model: int = 0
    memories: int = 0
    superseded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "facts_extracted": self.facts_extracted,
            "extraction_s": round(self.seconds, 1),
            "ops": dict(sorted(self.ops.items())),
            "decided_by_model": self.by_model,
            "memories": self.memories,
            "superseded": self.superseded,
        }


def _count(store: SqliteStore, user: str, where: dict[str, Any]) -> int:
    return len(store.search(memories_namespace(user), filter=where, limit=100_000))


def fact_store(
    conv: Conversation,
    embedder: Embeddings,
    dims: int,
    model: BaseChatModel,
    stats: ShelfStats | None = None,
    note: Callable[[str], None] | None = None,
) -> SqliteStore:
    """A fresh in-process store holding what the memory engine remembers of ``conv``
    on the user ``sample_id``: each turn's facts (``runner.turn_facts``) consolidated in
    order, each traced to its turn by ``provenance.message_id``. ``note`` hears each
    fact's fate (the local model takes ~10 s a turn: silence would look like a hang)."""
    stats = stats if stats is not None else ShelfStats()
    user = conv.sample_id
    store = SqliteStore(
        ":memory:", index={"embed": embedder, "dims": dims, "fields": list(DEFAULT_FIELDS)}
    )
    start = time.perf_counter()
    for turn, fact in turn_facts(conv, model, None):
        provenance = Provenance(thread_id=user, message_id=turn.dia_id, model=model_id(model))
        outcome = consolidate(store, model, user, fact, provenance)
        stats.facts_extracted += 1
        stats.ops[outcome.op] += 1
        stats.by_model += outcome.by_model
        if note:
            note(f"  {turn.dia_id} {outcome.op}: {fact.text}")
    stats.seconds += time.perf_counter() - start
    stats.turns += len(conv.turns)
    stats.memories += _count(store, user, CURRENT)
    stats.superseded += _count(store, user, {"status": SUPERSEDED})
    return store


@contextmanager
def _recaller(
    mode: str,
    conv: Conversation,
    embedder: Embeddings,
    dims: int,
    model: BaseChatModel,
    k: int,
    stats: ShelfStats,
    note: Callable[[str], None] | None = None,
) -> Iterator[Recaller]:
    """The memories the answer model is shown for a question, in one mode."""
    user = conv.sample_id
    namespace = memories_namespace(user)
    if mode == "turns":
        with turn_store(conv, embedder, dims) as store:
            yield lambda question: [
                str(h.value["text"])
                for h in search_ranked(store, namespace, question, k, LOCOMO_RANKING)
            ]
        return
    dates = {t.dia_id: t.date for t in conv.turns}

    def dated(store: SqliteStore, key: str, text: str) -> str:
        item = store.get(namespace, key)
        provenance = (item.value.get("provenance") or {}) if item else {}
        date = dates.get(str(provenance.get("message_id")))
        return f"({date}) {text}" if date else text

    with fact_store(conv, embedder, dims, model, stats, note) as store:
        yield lambda question: [
            dated(store, f.key, f.shown)
            for f in recall(store, user, question, k=k, char_budget=FACTS_CHAR_BUDGET)
        ]


Row = tuple[int, bool, float]


def _score(part: Sequence[Row]) -> dict[str, float]:
    n = max(len(part), 1)
    return {
        "j": sum(r[1] for r in part) / n,
        "f1": sum(r[2] for r in part) / n,
        "questions": len(part),
    }


def _summary(rows: Sequence[Row], seconds: dict[str, float]) -> dict[str, Any]:
    by_cat: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_cat[row[0]].append(row)
    return {
        **_score(rows),
        "by_category": {str(c): _score(p) for c, p in sorted(by_cat.items())},
        "seconds": {name: round(s, 1) for name, s in seconds.items()},
    }


def run_qa(
    conversations: Sequence[Conversation],
    embedder: Embeddings,
    dims: int,
    answerer: BaseChatModel,
    grader: BaseChatModel,
    *,
    k: int = 10,
    per_conversation: int | None = None,
    mode: str = "turns",
    limit_sessions: int | None = None,
    extractor: BaseChatModel | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """J (judge accuracy) and token F1 over categories 1-4, overall and per category, for
    each mode on the same questions. ``extractor`` is the memory engine's model in facts
    mode (default: the answer model). One mode's scores are also at the report's top.
    ``note`` hears each stage and each graded answer (a slow local model runs for long)."""
    modes = qa_modes(mode)
    extractor = extractor or answerer
    rows: dict[str, list[Row]] = {m: [] for m in modes}
    seconds: dict[str, dict[str, float]] = {m: defaultdict(float) for m in modes}
    stats = ShelfStats()
    samples: list[dict[str, Any]] = []
    asked: list[str] = []
    for whole in conversations:
        conv = session_slice(whole, limit_sessions)
        questions = conv.scored_questions()[:per_conversation]
        if not questions:
            continue  # nothing to ask: spare the extraction
        asked.append(conv.sample_id)
        for m in modes:
            if note:
                note(f"{conv.sample_id} {m}: {len(conv.turns)} turns, {len(questions)} questions")
            with _recaller(m, conv, embedder, dims, extractor, k, stats, note) as memories_for:
                for q in questions:
                    start = time.perf_counter()
                    shown = memories_for(q.question)
                    said = answer(answerer, shown, q.question)
                    judged = time.perf_counter()
                    correct = judge(grader, q.question, q.answer, said)
                    seconds[m]["answer"] += judged - start
                    seconds[m]["judge"] += time.perf_counter() - judged
                    f1 = token_f1(said, q.answer)
                    rows[m].append((q.category, correct, f1))
                    samples.append(
                        {
                            "mode": m,
                            "question": q.question,
                            "gold": q.answer,
                            "category": q.category,
                            "answer": said,
                            "correct": correct,
                            "f1": f1,
                            "memories": shown,
                        }
                    )
                    if progress:
                        progress(1)
                    if note:
                        note(f"{m} {'right' if correct else 'wrong'}: {q.question}")
    report: dict[str, Any] = {
        "mode": mode,
        "k": k,
        "limit_sessions": limit_sessions,
        "conversations": asked,
        "questions": len(rows[modes[0]]),
        "modes": {m: _summary(rows[m], seconds[m]) for m in modes},
        "samples": samples,
    }
    if "facts" in modes:
        report["modes"]["facts"]["store"] = stats.as_dict()
    if len(modes) == 1:
        only = report["modes"][modes[0]]
        report.update(j=only["j"], f1=only["f1"], by_category=only["by_category"])
    return report


def qa_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one column per mode, plus the facts store."""
    from memshelf.eval.locomo import CATEGORY_NAMES

    modes = list(report["modes"])
    head = "| | " + " | ".join(modes) + " |\n|---|" + "---|" * len(modes)

    def cell(row: dict[str, Any] | None) -> str:
        if not row:
            return "-"
        return f"J {100 * row['j']:.1f} / F1 {100 * row['f1']:.1f} ({row['questions']})"

    lines = [head, "| all | " + " | ".join(cell(report["modes"][m]) for m in modes) + " |"]
    cats = sorted({c for m in modes for c in report["modes"][m]["by_category"]}, key=int)
    for c in cats:
        name = CATEGORY_NAMES.get(int(c), f"category {c}")
        cells = [cell(report["modes"][m]["by_category"].get(c)) for m in modes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    times = [report["modes"][m]["seconds"] for m in modes]
    lines.append(
        "| answer + judge s | "
        + " | ".join(f"{t.get('answer', 0):.0f} + {t.get('judge', 0):.0f}" for t in times)
        + " |"
    )
    sliced = report["limit_sessions"]
    out = [
        f"{report['questions']} questions (categories 1-4"
        + (f", evidence within the first {sliced} sessions" if sliced else "")
        + f"), k={report['k']}, conversations: {', '.join(report['conversations']) or 'none'}",
        "",
        *lines,
    ]
    store = report["modes"].get("facts", {}).get("store")
    if store:
        ops = ", ".join(f"{op} {n}" for op, n in store["ops"].items()) or "none"
        out += [
            "",
            f"facts store: {store['facts_extracted']} facts extracted from {store['turns']} "
            f"turns in {store['extraction_s']:.0f} s; consolidation: {ops} "
            f"({store['decided_by_model']} decided by the model); {store['memories']} current "
            f"memories, {store['superseded']} superseded",
        ]
    return "\n".join(out)
