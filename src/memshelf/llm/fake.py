"""A deterministic chat model for tests, shipped as real code (like the fake embedder).

``ScriptedChatModel`` answers with whatever its ``respond`` function returns
for the messages (so tests can script tool calls), and its structured output
comes from ``structured``. It records every call, so tests can assert on what
the model was shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict, Field

Responder = Callable[[list[BaseMessage], dict[str, Any]], AIMessage | str]
Structurer = Callable[[list[BaseMessage], Any], Any]


def _echo(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    return f"echo: {messages[-1].content}" if messages else "echo"


class ScriptedChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    respond: Responder = _echo
    structured: Structurer | None = None
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "memshelf-scripted"

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        self.bound_tools[:] = names
        return self.bind(tool_names=names, **kwargs)

    def with_structured_output(
        self, schema: Any, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        def run(value: LanguageModelInput) -> Any:
            messages = list(value) if isinstance(value, list) else []
            self.calls.append(messages)
            if self.structured is None:
                raise NotImplementedError("ScriptedChatModel needs structured= for this call.")
            return self.structured(messages, schema)

        return RunnableLambda(run)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        reply = self.respond(list(messages), kwargs)
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=reply)
        return ChatResult(generations=[ChatGeneration(message=message)])


def _answer_from_facts(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    """Reply with the recalled facts and the thread's earlier user messages the prompt
    carries, so tests can see what was recalled and which history the model was shown."""
    facts = [
        line[2:]
        for m in messages
        if m.type == "system"
        for line in str(m.content).splitlines()
        if line.startswith("- ")
    ]
    reply = "From memory: " + "; ".join(facts) if facts else "I don't know anything about you yet."
    earlier = [str(m.content) for m in messages[:-1] if m.type == "human"]
    return reply + (" Earlier here you said: " + " | ".join(earlier) if earlier else "")


def _user_message(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content) if messages else ""
    return text.split("User message: ", 1)[-1]


def _statements(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """Extraction stand-in: every sentence of the user's message that is not a question."""
    from memshelf.memory.guard import sentences

    return [
        {"text": s.rstrip(".!"), "kind": "fact"}
        for line in _user_message(messages).splitlines()
        for s in sentences(line)
        if not s.endswith("?")
    ]


def _decide(messages: list[BaseMessage]) -> dict[str, Any]:
    """Consolidation stand-in, by rule: a change word plus a shared content word
    supersedes; more detail updates; less detail is a duplicate; else add."""
    from memshelf.memory.guard import content_stems, states_change

    prompt = str(messages[-1].content) if messages else ""
    new = prompt.rsplit("NEW: ", 1)[-1].strip()
    listed = re.findall(r"^(\d+)\. (.+)$", prompt.split("NEW: ")[0], re.MULTILINE)
    new_stems = content_stems(new)
    for number, text in listed:
        old = content_stems(text)
        if not old & new_stems:
            continue
        if states_change(new):
            return {"op": "SUPERSEDE", "target": int(number)}
        if old < new_stems:
            return {"op": "UPDATE", "target": int(number)}
        if new_stems <= old:
            return {"op": "NOOP", "target": int(number)}
    return {"op": "ADD", "target": None}


def _grade(messages: list[BaseMessage]) -> dict[str, Any]:
    """Judge stand-in (``eval qa``): correct when the gold answer occurs in the candidate."""
    prompt = str(messages[-1].content) if messages else ""
    gold = prompt.split("Gold answer: ", 1)[-1].split("\n", 1)[0].strip().lower()
    return {"correct": bool(gold) and gold in prompt.split("Candidate: ", 1)[-1].lower()}


_WORD = re.compile(r"[a-z0-9]{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _team(name: str, messages: list[BaseMessage]) -> dict[str, Any]:
    """The team's structured answers by rule (``memshelf.team.nodes`` and ``verify``):
    route to research unless the findings share two words with the question, pick the
    sentence sharing most words with it (two at least), and judge a claim supported
    when it is grounded in the quote."""
    from memshelf.memory.guard import grounded

    prompt = str(messages[-1].content) if messages else ""
    question = prompt.split("\n", 1)[0]
    if name == "Route":
        listed = prompt.split("VERIFIED FINDINGS:", 1)[-1]
        return {"next": "answer" if len(_words(question) & _words(listed)) >= 2 else "research"}
    if name == "Pick":
        numbered = re.findall(r"^(\d+)\. (.+)$", prompt.split("SENTENCES:", 1)[-1], re.M)
        ranked = sorted(numbered, key=lambda n: -len(_words(question) & _words(n[1])))
        fits = ranked and len(_words(question) & _words(ranked[0][1])) >= 2
        return {"sentence": int(ranked[0][0]) if fits else 0}
    quote = prompt.split("QUOTE: ", 1)[-1].split("\nCLAIM: ", 1)[0]
    return {"supported": grounded(prompt.split("\nCLAIM: ", 1)[-1], quote)}


_TEAM_SCHEMAS = ("Route", "Pick", "Judgement")


def _structured(messages: list[BaseMessage], schema: Any) -> Any:
    """Extraction, consolidation, grading or a team decision, by the schema asked for
    (any other schema gets the consolidation decision)."""
    name = getattr(schema, "__name__", "")
    if name == "ExtractedFacts":
        data = {"facts": _statements(messages)}
    elif name in _TEAM_SCHEMAS:
        data = _team(name, messages)
    else:
        data = _grade(messages) if name == "Verdict" else _decide(messages)
    return schema.model_validate(data) if hasattr(schema, "model_validate") else data


def rule_based_chat_model() -> ScriptedChatModel:
    """The ``fake`` provider: answers from recalled facts, extracts statements, and
    consolidates by rule. Tests only."""
    return ScriptedChatModel(respond=_answer_from_facts, structured=_structured)
