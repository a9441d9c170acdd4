"""The memory engine: what a fact is, how facts are extracted, consolidated, recalled,
kept in history and forgotten, and the background writer that runs the write path."""

from memshelf.memory.consolidate import Outcome, consolidate
from memshelf.memory.extract import ExtractedFacts, extract_facts, states_something
from memshelf.memory.guard import clean_fact, is_attack, is_pure_question, quote_facts
from memshelf.memory.history import history
from memshelf.memory.recall import arecall, asks_about_me, recall
from memshelf.memory.shelf import (
    edit_fact,
    export_facts,
    find_to_forget,
    forget,
    forget_user,
    import_facts,
    list_facts,
    restore_fact,
    save_fact,
)
from memshelf.memory.types import Fact, Provenance, RecalledFact, fact_key, fact_value
from memshelf.memory.writer import BackgroundWriter, ExtractionJob, MemoryWriter, ThreadStatus

__all__ = [
    "BackgroundWriter",
    "ExtractedFacts",
    "ExtractionJob",
    "Fact",
    "MemoryWriter",
    "Outcome",
    "Provenance",
    "RecalledFact",
    "ThreadStatus",
    "arecall",
    "asks_about_me",
    "clean_fact",
    "consolidate",
    "edit_fact",
    "export_facts",
    "extract_facts",
    "fact_key",
    "fact_value",
    "find_to_forget",
    "forget",
    "forget_user",
    "history",
    "import_facts",
    "is_attack",
    "is_pure_question",
    "list_facts",
    "quote_facts",
    "recall",
    "restore_fact",
    "save_fact",
    "states_something",
]
