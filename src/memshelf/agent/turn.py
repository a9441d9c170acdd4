"""Run one agent turn and time it node by node (recall / model / tools / remember).

A turn can stop anywhere: the model fails, the user presses Ctrl-C, the process gets
SIGTERM or SIGKILL. Whatever stops it, two things hold afterwards:

- the user's message is remembered exactly once. It is written to the extraction
  journal (:meth:`~memshelf.memory.BackgroundWriter.hold`) before the model sees it,
  so a killed process's next writer extracts it; an interrupted turn (Ctrl-C,
  SIGTERM) hands it to the writer at once (:func:`settle`), and one whose model failed
  leaves it in the journal for the next writer that starts (the model may still fail);
- the thread is left after the turn, never half-way through it: the run is marked
  finished, and a tool call the model asked for but never got a result for is dropped
  (providers refuse a history with an unanswered tool call). The user's message stays
  in the thread, without a reply. A thread a killed process left half-way is settled
  the same way before its next turn.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage

from memshelf.agent.graph import memory_writer
from memshelf.agent.nodes import check_message
from memshelf.memory import ExtractionJob

log = logging.getLogger(__name__)
LAST_NODE = "remember"  # a state written as this node's has nothing left to run


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

    An oversized message is refused before it reaches the thread's history. If the turn
    does not finish (an error, or KeyboardInterrupt / SystemExit from a signal), the
    thread and the message are settled (see the module docstring) before it propagates.
    """
    check_message(message, max_chars)
    seconds: dict[str, float] = {}
    recalled: list[dict[str, Any]] = []
    reply = ""
    with guarded_turn(graph, user_id, thread_id, message) as (human, config):
        start = time.perf_counter()
        for update in graph.stream({"messages": [human]}, config, stream_mode="updates"):
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


@contextmanager
def guarded_turn(
    graph: Any, user_id: str, thread_id: str, message: str
) -> Iterator[tuple[HumanMessage, dict[str, Any]]]:
    """The message to stream (with its id fixed, so the journal and the thread name it
    alike) and the run config, for a block that runs the turn. Before the block the
    message is journalled; if the block raises anything (an error, KeyboardInterrupt,
    SystemExit), the turn is settled before it propagates."""
    config = {"configurable": {"user_id": user_id, "thread_id": thread_id}}
    human = HumanMessage(message, id=str(uuid.uuid4()))
    before = settle_unfinished(graph, config)
    job = ExtractionJob(
        user_id=user_id,
        thread_id=thread_id,
        message_id=str(human.id),
        text=message,
        previous=_last_reply(before),
    )
    try:
        hold = getattr(memory_writer(graph), "hold", None)
        if hold is not None:
            hold(job)  # journalled first: a kill from here on loses no memory
        yield human, config
    except Exception:  # the model or a store failed: extracting now would likely fail too
        settle(graph, config, None)
        raise
    except BaseException:  # interrupted: the model works, so the memories are written now
        settle(graph, config, job)
        raise


def settle(graph: Any, config: dict[str, Any], job: ExtractionJob | None) -> None:
    """After a turn that did not finish: leave the thread after the turn, and hand the
    message (``job``) to the writer now, or (None) leave it in the journal for the next
    writer that starts. Either way it is extracted once: the job's id is the message's.
    Best effort: a failure here is logged and never hides what stopped the turn."""
    writer = memory_writer(graph)
    try:
        if writer is not None and job is not None:
            writer.submit(job)
    except Exception as exc:
        log.warning("Could not queue an unfinished turn's message: %s", type(exc).__name__)
    try:
        finish_run(graph, config)
    except Exception as exc:
        log.warning("Could not settle an unfinished turn's thread: %s", type(exc).__name__)


def settle_unfinished(graph: Any, config: dict[str, Any]) -> list[BaseMessage]:
    """The thread's messages, after settling a run a killed process left half-way."""
    snapshot = graph.get_state(config)
    if snapshot.next:
        finish_run(graph, config)
        snapshot = graph.get_state(config)
    return list((snapshot.values or {}).get("messages") or [])


def finish_run(graph: Any, config: dict[str, Any]) -> bool:
    """Mark the thread's unfinished run finished, dropping an unanswered tool call;
    False when there was nothing to finish."""
    snapshot = graph.get_state(config)
    if not snapshot.next:
        return False
    messages = list((snapshot.values or {}).get("messages") or [])
    dangling = [
        RemoveMessage(id=str(m.id))
        for m in messages[-1:]
        if isinstance(m, AIMessage) and m.tool_calls and m.id
    ]
    graph.update_state(config, {"messages": dangling}, as_node=LAST_NODE)
    return True


def _last_reply(messages: list[BaseMessage]) -> str | None:
    """The assistant's last words, which the next user message may answer."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and message.text:
            return str(message.text)
    return None
