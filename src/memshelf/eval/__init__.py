"""Evaluation: LoCoMo datasets, retrieval metrics, runners and reports."""

from memshelf.eval.locomo import Conversation, Question, Turn, load, select
from memshelf.eval.metrics import evidence_recall, percentile, token_f1
from memshelf.eval.runner import TurnFormat, run_locomo

__all__ = [
    "Conversation",
    "Question",
    "Turn",
    "TurnFormat",
    "evidence_recall",
    "load",
    "percentile",
    "run_locomo",
    "select",
    "token_f1",
]
