"""``memshelf eval qa``: answer LoCoMo questions from recalled memories, then grade them.

The answer model sees only the top-k memories recalled for the question (the
agent's recall path). Grading: token F1 against the gold answer, and an LLM
judge deciding whether the answer is correct (the "J" metric of the Mem0
paper). Any chat model can answer or judge; a hosted one is advised for
judging, the local one works for a smoke test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from memshelf.eval.locomo import Conversation
from memshelf.eval.metrics import token_f1
from memshelf.eval.runner import Progress, turn_store
from memshelf.memory.guard import quote_facts
from memshelf.namespaces import memories_namespace

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


def run_qa(
    conversations: Sequence[Conversation],
    embedder: Embeddings,
    dims: int,
    answerer: BaseChatModel,
    grader: BaseChatModel,
    *,
    k: int = 10,
    per_conversation: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """J (judge accuracy) and token F1 over categories 1-4, overall and per category."""
    rows: list[tuple[int, bool, float]] = []
    samples: list[dict[str, Any]] = []
    for conv in conversations:
        with turn_store(conv, embedder, dims) as store:
            for q in conv.scored_questions()[:per_conversation]:
                hits = store.search(memories_namespace(conv.sample_id), query=q.question, limit=k)
                said = answer(answerer, [str(h.value["text"]) for h in hits], q.question)
                correct = judge(grader, q.question, q.answer, said)
                rows.append((q.category, correct, token_f1(said, q.answer)))
                samples.append(
                    {"question": q.question, "gold": q.answer, "answer": said, "correct": correct}
                )
                if progress:
                    progress(1)
    by_cat: dict[int, list[tuple[int, bool, float]]] = defaultdict(list)
    for row in rows:
        by_cat[row[0]].append(row)

    def score(part: list[tuple[int, bool, float]]) -> dict[str, float]:
        n = max(len(part), 1)
        return {
            "j": sum(r[1] for r in part) / n,
            "f1": sum(r[2] for r in part) / n,
            "questions": len(part),
        }

    return {
        **score(rows),
        "k": k,
        "by_category": {str(c): score(p) for c, p in sorted(by_cat.items())},
        "samples": samples,
    }
