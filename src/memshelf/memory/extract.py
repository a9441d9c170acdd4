"""Extraction: the chat model distils what a user said about themselves into facts.

Structured output (a JSON schema the local model is constrained to) keeps the
answer parseable; the guard drops empty, over-long or instruction-like facts.
A message that only asks questions states nothing, so the model is not asked.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from memshelf.memory.guard import clean_fact, grounded, is_pure_question

EXTRACT_SYSTEM = (
    "You extract long-term memories about the user from their message. Split the message "
    "into separate facts the user states about themselves (name, where and how they work, "
    "tools, preferences, plans): one fact per item, each a short third-person sentence "
    "that starts with the user's name if they give it, otherwise with 'The user'. "
    "Never copy the message whole. Leave out general knowledge, questions and requests. "
    "Return an empty list when there is nothing to remember.\n"
    'Example: "I\'m Dana, I live in Oslo and I hate long emails." -> '
    '{"facts": ["The user\'s name is Dana.", "Dana lives in Oslo.", '
    '"Dana hates long emails."]}'
)


class ExtractedFacts(BaseModel):
    facts: list[str] = Field(
        default_factory=list, description="Facts the user stated about themselves, one each."
    )


def extract_facts(model: BaseChatModel, message: str) -> list[str]:
    """Distinct, cleaned facts the message states about its author (maybe none)."""
    if not message.strip() or is_pure_question(message):
        return []
    extractor = model.with_structured_output(ExtractedFacts)
    result = extractor.invoke([SystemMessage(EXTRACT_SYSTEM), HumanMessage(message)])
    facts = (
        result.facts
        if isinstance(result, ExtractedFacts)
        else ExtractedFacts.model_validate(result).facts
    )
    seen: dict[str, str] = {}
    for fact in facts:
        cleaned = clean_fact(fact)
        if cleaned and grounded(cleaned, message):
            seen.setdefault(cleaned.lower(), cleaned)
    return list(seen.values())
