"""Wiring only: recall → supervisor → (researcher → verifier → supervisor)* → writer,
compiled with both memory layers (thread checkpoints per user, the store for findings)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from memshelf.agent.graph import close_checkpointer, default_checkpointer
from memshelf.agent.nodes import check_message
from memshelf.config import Settings
from memshelf.namespaces import encode_label
from memshelf.team.nodes import Limits, TeamNodes
from memshelf.team.sources import Sources
from memshelf.team.state import TeamState
from memshelf.threads import owned

RECURSION_LIMIT = 16  # recall, supervisor, 3 per research round, writer: far below this


def build_team(
    *,
    store: BaseStore,
    model: BaseChatModel,
    sources: Sources,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    limits: Limits | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The team graph. Every run needs ``team_id``, ``user_id`` and ``thread_id``."""
    nodes = TeamNodes(model, sources, limits or Limits())
    graph = StateGraph(TeamState)
    graph.add_node("recall", nodes.recall)
    graph.add_node("supervisor", nodes.supervisor)
    graph.add_node("researcher", nodes.researcher)
    graph.add_node("verifier", nodes.verifier)
    graph.add_node("writer", nodes.writer)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "supervisor")
    graph.add_conditional_edges("supervisor", nodes.route, ["researcher", "writer"])
    graph.add_edge("researcher", "verifier")
    graph.add_edge("verifier", "supervisor")
    graph.add_edge("writer", END)
    saver = owned(checkpointer, store) if checkpointer is not None else None
    return graph.compile(checkpointer=saver, store=store)


@contextmanager
def open_team(
    settings: Settings,
    *,
    model: BaseChatModel | None = None,
    store: BaseStore | None = None,
    notes_dir: Path | None = None,
    allow_origins: tuple[str, ...] = (),
    limits: Limits | None = None,
) -> Iterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """The team on the configured store and thread memory; closes what it opened."""
    with ExitStack() as opened:
        if store is None:
            from memshelf.stores import open_store

            store = opened.enter_context(open_store(settings=settings))
        saver = default_checkpointer(settings, store)
        opened.callback(close_checkpointer, saver)
        if model is None:
            from memshelf.llm import chat_model

            model = chat_model(settings=settings)
        sources = Sources.create(settings, notes_dir=notes_dir, allow_origins=allow_origins)
        limits = limits or Limits(max_message_chars=settings.max_message_chars)
        yield build_team(
            store=store, model=model, sources=sources, checkpointer=saver, limits=limits
        )


@dataclass
class TeamResult:
    """One team run: the answer, the findings it used, every tool call and step, cost."""

    answer: str
    findings: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    seconds: float
    tokens: int
    cited: list[str] = field(default_factory=list)  # keys of the findings the answer cites

    @property
    def fetches(self) -> int:
        return sum(c["tool"] in ("fetch_url", "read_note") for c in self.tool_calls)

    @property
    def reused(self) -> list[dict[str, Any]]:
        """Findings used that earlier runs verified (not found in this run)."""
        return [f for f in self.findings if not f.get("new")]


def team_thread(team_id: str, thread_id: str) -> str:
    """The thread a team run lives in: kept apart from the user's own agent threads.
    The team id is encoded (``:`` becomes ``%3A``) so team ``a:b`` + thread ``c`` and
    team ``a`` + thread ``b:c`` are two threads, not one."""
    return f"team:{encode_label(team_id, what='team id')}:{thread_id}"


def run_team(
    graph: Any,
    team_id: str,
    user_id: str,
    thread_id: str,
    question: str,
    *,
    max_chars: int = 20_000,
    on_step: Any = None,
) -> TeamResult:
    """Run the team on one question, streaming each node's update to ``on_step``."""
    check_message(question, max_chars)
    usage = UsageMetadataCallbackHandler()
    config: dict[str, Any] = {
        "configurable": {
            "team_id": team_id,
            "user_id": user_id,
            "thread_id": team_thread(team_id, thread_id),
        },
        "recursion_limit": RECURSION_LIMIT,
        "callbacks": [usage],
    }
    start = time.perf_counter()
    state: dict[str, Any] = {}
    for mode, chunk in graph.stream(
        {"messages": [HumanMessage(question)]}, config, stream_mode=["updates", "values"]
    ):
        if mode == "values":
            state = chunk
        elif on_step is not None:
            for node, delta in chunk.items():
                for step in (delta or {}).get("steps") or []:
                    if not step.get("reset"):
                        on_step(node, step)
    seconds = time.perf_counter() - start
    tokens = sum(int(u.get("total_tokens", 0)) for u in usage.usage_metadata.values())
    return TeamResult(
        answer=str(state["messages"][-1].text),
        findings=list(state.get("findings") or []),
        tool_calls=list(state.get("tool_calls") or []),
        steps=list(state.get("steps") or []),
        seconds=seconds,
        tokens=tokens,
        cited=list(state.get("cited") or []),
    )
