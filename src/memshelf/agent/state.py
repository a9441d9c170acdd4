"""The agent's graph state: the thread's messages plus what recall found this turn."""

from __future__ import annotations

from typing import Any

from langgraph.graph import MessagesState


class AgentState(MessagesState):
    """``recalled`` is replaced every turn; only ``messages`` accumulate in the thread.
    ``memory_pending``: recall stopped waiting for this user's earlier messages to be saved."""

    recalled: list[dict[str, Any]]
    memory_pending: bool
    tool_rounds: int
