"""The team graph's state: the thread's messages, plus what this run recalled, did and found.

``steps`` and ``tool_calls`` accumulate within a run (every step is visible in the stream
and in ``--verbose``); the recall node resets them at the start of each run.
"""

from __future__ import annotations

from typing import Annotated, Any

from langgraph.graph import MessagesState


def log(existing: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> list[Any]:
    """Append, or start afresh when a node sends ``[{"reset": True}]``."""
    if new and new[0].get("reset"):
        return list(new[1:])
    return [*(existing or []), *(new or [])]


class TeamState(MessagesState):
    question: str
    personal: list[str]  # the user's own facts, recalled for this question (read-only)
    findings: list[dict[str, Any]]  # verified findings this run may use, numbered for citing
    proposed: list[str]  # keys proposed in this run, not yet verified
    research_rounds: int
    route: str
    cited: list[str]  # keys of the findings the answer cites, in citation order
    steps: Annotated[list[dict[str, Any]], log]
    tool_calls: Annotated[list[dict[str, Any]], log]
