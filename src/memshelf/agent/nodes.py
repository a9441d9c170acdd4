"""The agent's nodes, one job each: recall, respond, remember (and the tool loop's router)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, Optional

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.store.base import BaseStore

from memshelf.agent.prompts import SYSTEM_PROMPT
from memshelf.agent.runtime import require_store, require_user_id
from memshelf.agent.state import AgentState
from memshelf.errors import MemshelfError, MessageTooLargeError, ModelError
from memshelf.llm.registry import describe_failure
from memshelf.memory import ExtractionJob, MemoryWriter, quote_facts, recall

RECALL_WAIT_S = 60.0  # longest a turn waits for the previous turns' memories
# short and blunt: a small local model ignored a longer, hedged note and invented a name
PENDING_NOTE = (
    "Some of this user's memories are still being written: if the answer is not in the "
    "facts above, say you don't know yet. Never guess."
)
log = logging.getLogger(__name__)


def last_human(messages: Sequence[BaseMessage]) -> HumanMessage | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message
    return None


class Nodes:
    """Node functions bound to one chat model and tool set."""

    def __init__(
        self,
        model: BaseChatModel,
        tools: list[Any],
        recall_k: int,
        max_rounds: int,
        max_message_chars: int = 20_000,
        writer: MemoryWriter | None = None,
    ):
        self.model = model
        self.writer = writer
        self.tools = tools
        self.with_tools = model.bind_tools(tools) if tools else model
        self.recall_k = recall_k
        self.max_rounds = max_rounds
        self.max_message_chars = max_message_chars
        # Local models keep the stable prefix (instructions + tools + history) in their
        # prompt cache when the per-turn facts come late; hosted ones expect one system message.
        self.facts_last = bool(getattr(model, "late_system_messages", False))

    def recall(
        self,
        state: AgentState,
        config: RunnableConfig,
        *,
        store: Optional[BaseStore] = None,  # noqa: UP045 (LangGraph injects by this spelling)
    ) -> dict[str, Any]:
        """Search the user's shelf with the latest user message."""
        user_id = require_user_id(config)
        store = require_store(store)
        message = last_human(state["messages"])
        if message is not None:
            check_message(str(message.text), self.max_message_chars)
        pending = False
        # read-your-writes: what earlier turns taught is in, or the model is told it is not
        if self.writer is not None and not self.writer.wait(user_id, timeout=RECALL_WAIT_S):
            pending = True
            log.warning(
                "recall gave up waiting %.0f s for this user's pending memories", RECALL_WAIT_S
            )
        facts = recall(store, user_id, str(message.text), k=self.recall_k) if message else []
        return {
            "recalled": [{"key": f.key, "text": f.shown, "score": f.score} for f in facts],
            "memory_pending": pending,
            "tool_rounds": 0,
        }

    def prompt(self, state: AgentState) -> list[BaseMessage]:
        block = quote_facts([f["text"] for f in state.get("recalled") or []])
        if state.get("memory_pending"):
            block += "\n" + PENDING_NOTE
        facts = SystemMessage(block)
        messages = list(state["messages"])
        if not self.facts_last:
            return [SystemMessage(SYSTEM_PROMPT + "\n\n" + str(facts.content)), *messages]
        cut = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        return [SystemMessage(SYSTEM_PROMPT), *messages[:cut], facts, *messages[cut:]]

    def respond(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """The model answers, or asks for tools (until the round limit forces an answer)."""
        rounds = state.get("tool_rounds", 0)
        runnable = self.with_tools if rounds < self.max_rounds else self.model
        prompt = self.prompt(state)  # a bug here is ours, not the chat model's failure
        try:
            reply = runnable.invoke(prompt, config)
        except (MemshelfError, GraphBubbleUp):
            raise
        except Exception as exc:  # a provider's error or timeout, after its own bounded retries
            raise ModelError(describe_failure(self.model, exc)) from exc
        return {"messages": [reply], "tool_rounds": rounds + (1 if _calls(reply) else 0)}

    def route(self, state: AgentState) -> Literal["tools", "remember"]:
        return "tools" if _calls(state["messages"][-1]) else "remember"

    def remember(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Hand the user's message to the memory writer; the reply never waits for it."""
        user_id = require_user_id(config)
        messages = state["messages"]
        message = last_human(messages)
        if message is None or self.writer is None:
            return {}
        at = messages.index(message)
        previous = next(
            (m for m in reversed(messages[:at]) if isinstance(m, AIMessage) and m.text), None
        )
        self.writer.submit(
            ExtractionJob(
                user_id=user_id,
                thread_id=str((config.get("configurable") or {}).get("thread_id")),
                message_id=str(message.id),
                text=str(message.text),
                previous=str(previous.text) if previous is not None else None,
            )
        )
        return {}


def check_message(text: str, limit: int) -> None:
    """Refuse a message over ``limit`` characters before anything acts on it."""
    if len(text) > limit:
        raise MessageTooLargeError(
            f"The message is {len(text):,} characters; the agent accepts up to {limit:,}. "
            "Send a shorter message (or a file path for fetch_url/search_notes to read), or "
            "raise MEMSHELF_MAX_MESSAGE_CHARS."
        )


def _calls(message: BaseMessage) -> bool:
    return isinstance(message, AIMessage) and bool(message.tool_calls)
