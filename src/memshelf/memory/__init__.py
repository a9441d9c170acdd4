"""The memory engine: what a fact is, how facts are extracted, recalled and forgotten."""

from memshelf.memory.extract import ExtractedFacts, extract_facts
from memshelf.memory.guard import clean_fact, is_pure_question, quote_facts
from memshelf.memory.recall import arecall, recall
from memshelf.memory.shelf import export_facts, forget, import_facts, list_facts, save_fact
from memshelf.memory.types import Provenance, RecalledFact, fact_key, fact_value

__all__ = [
    "ExtractedFacts",
    "Provenance",
    "RecalledFact",
    "arecall",
    "clean_fact",
    "export_facts",
    "extract_facts",
    "fact_key",
    "fact_value",
    "forget",
    "import_facts",
    "is_pure_question",
    "list_facts",
    "quote_facts",
    "recall",
    "save_fact",
]
