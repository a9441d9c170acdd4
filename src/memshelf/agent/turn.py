"""Run one agent turn and time it node by node (recall / model / tools / remember)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from memshelf.agent.graph import memory_writer
from memshelf.agent.nodes import check_message


@dataclass
class TurnResult:
    reply: str
    recalled: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def run_turn(
    graph: Any,
    user_id: str,
    thread_id: str,
    message: str,
    *,
    max_chars: int = 20_000,
    wait_for_memories: bool = True,
) -> TurnResult:
    """Invoke the graph for one user message; by default returns once the turn's memories
    are written (``seconds["memory"]``; the reply itself never waits for them).

    An oversized message is refused before it reaches the thread's history.
    """
    check_message(message, max_chars)
    config = {"configurable": {"user_id": user_id, "thread_id": thread_id}}
    seconds: dict[str, float] = {}
    recalled: list[dict[str, Any]] = []
    reply = ""
    start = time.perf_counter()
    for update in graph.stream(
        {"messages": [HumanMessage(message)]}, config, stream_mode="updates"
    ):
        now = time.perf_counter()
        for node, delta in update.items():
            seconds[node] = seconds.get(node, 0.0) + (now - start)
            if node == "recall" and delta:
                recalled = delta.get("recalled", [])
            if node == "respond" and delta:
                last = delta["messages"][-1]
                if isinstance(last, AIMessage) and not last.tool_calls:
                    reply = str(last.text)
        start = now
    writer = memory_writer(graph)
    if wait_for_memories and writer is not None:
        writer.wait(user_id, thread_id)
        seconds["memory"] = time.perf_counter() - start
    return TurnResult(reply=reply.strip(), recalled=recalled, seconds=seconds)
