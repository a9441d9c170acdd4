"""``memshelf ask`` (one scripted turn) and ``memshelf chat`` (interactive, streaming)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, UserId, build_settings


@contextmanager
def _agent(store: str | None, model: str | None) -> Iterator[tuple[Any, int]]:
    """The agent, and the longest message it accepts (from the same settings). Leaving
    the block writes the pending memories and closes the store and the thread file."""
    from memshelf.agent import open_agent

    settings = build_settings(store, model)
    with open_agent(settings=settings) as graph:
        yield graph, settings.max_message_chars


def ask(
    message: Annotated[str, typer.Argument(help="What the user says.")],
    user: UserId,
    thread: Annotated[
        str, typer.Option("--thread", "-t", help="Conversation id (the user's own default).")
    ] = "default",
    store: StoreUrl = None,
    model: ModelSpec = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show recall and timings.")
    ] = False,
) -> None:
    """One turn: print the reply; exit 0 only once the turn's memories are written."""
    from memshelf.agent.turn import run_turn

    with _agent(store, model) as (graph, limit):
        result = run_turn(graph, user, thread, message, max_chars=limit)
    if verbose:
        for fact in result.recalled:
            typer.secho(f"recalled: {fact['text']}", fg=typer.colors.CYAN, err=True)
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
        typer.secho(f"timings: {timing}", fg=typer.colors.CYAN, err=True)
    typer.echo(result.reply)


HELP = "commands: /memories  /forget <fact>  /thread new  /quit"


def chat(
    user: UserId,
    thread: Annotated[
        str | None,
        typer.Option("--thread", "-t", help="Conversation id (default: a new one each run)."),
    ] = None,
    store: StoreUrl = None,
    model: ModelSpec = None,
) -> None:
    """Interactive chat with streaming replies and memory commands."""
    from memshelf.agent.runtime import require_store
    from memshelf.namespaces import owned_thread_id

    thread = uuid.uuid4().hex[:8] if thread is None else thread
    owned_thread_id(user, thread)  # a bad user or thread id fails now, not after a message
    # leaving the block writes what the last messages taught before the store closes
    with _agent(store, model) as (graph, limit):
        shelf = require_store(graph.store)
        typer.echo(f"memshelf chat — user {user!r}, thread {thread!r}. {HELP}")
        _chat_loop(graph, shelf, user, thread, limit)


def _chat_loop(graph: Any, shelf: Any, user: str, thread: str, limit: int) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from memshelf.agent import memory_writer
    from memshelf.memory import forget, list_facts

    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return
        writer = memory_writer(graph)
        if line.startswith(("/memories", "/forget")) and writer is not None:
            writer.wait(user)  # show the shelf with this session's memories written
        if line == "/memories":
            for item in list_facts(shelf, user):
                typer.echo(f"  - {item.value.get('text')}  [{item.key}]")
            continue
        if line.startswith("/forget"):
            gone = forget(shelf, user, line[len("/forget") :].strip())
            typer.echo("  forgot: " + ("; ".join(gone) if gone else "nothing matched"))
            continue
        if line == "/thread new":
            thread = uuid.uuid4().hex[:8]
            typer.echo(f"  new thread {thread!r}")
            continue
        if line.startswith("/"):
            typer.echo(HELP)
            continue
        if len(line) > limit:
            typer.echo(f"  message too long ({len(line):,} characters; limit {limit:,})")
            continue
        config = {"configurable": {"user_id": user, "thread_id": thread}}
        typer.echo("bot> ", nl=False)
        for chunk, meta in graph.stream(
            {"messages": [HumanMessage(line)]}, config, stream_mode="messages"
        ):
            if (
                meta.get("langgraph_node") == "respond"
                and isinstance(chunk, AIMessage)  # a chunk, or a non-streaming model's reply
                and not chunk.tool_calls
                and not getattr(chunk, "tool_call_chunks", None)
            ):
                typer.echo(str(chunk.text), nl=False)
        typer.echo()
