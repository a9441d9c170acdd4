"""The research agent that remembers: LangGraph graph, nodes, tools."""

from memshelf.agent.graph import (
    build_agent,
    close_agent,
    close_checkpointer,
    default_checkpointer,
    memory_writer,
    open_agent,
    open_async_agent,
)
from memshelf.agent.state import AgentState

__all__ = [
    "AgentState",
    "build_agent",
    "close_agent",
    "close_checkpointer",
    "default_checkpointer",
    "memory_writer",
    "open_agent",
    "open_async_agent",
]
