"""``memshelf ask`` (one scripted turn) and ``memshelf chat`` (interactive, streaming)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, UserId, build_settings, check_store_file

# Longest an interrupted command spends writing the turn's memories before it exits; the
# journal keeps whatever is left for the next `memshelf ask` or `chat`.
GRACE_S = 10.0
LATER = "the next `memshelf ask` or `chat` on this store"


class Interrupted(BaseException):
    """SIGTERM or SIGINT (Ctrl-C), raised in the main thread so the turn unwinds: like
    KeyboardInterrupt, not an Exception, so no layer mistakes it for a failure to handle."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum


def _say(line: str) -> None:
    """One line on stderr, safe in a signal handler or a timer thread."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


@contextmanager
def _interruptible(describe: Callable[[], str]) -> Iterator[None]:
    """SIGTERM and SIGINT print ``describe()`` on stderr, give the winding-down
    :data:`GRACE_S` and raise :class:`Interrupted`; a second one stops memshelf at once
    (the journal keeps the memories for later). The previous handlers come back
    afterwards. Only the main thread may set handlers: elsewhere (e.g. a test runner's
    thread) the signals keep theirs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if raised.is_set():
            _say(f"interrupted again: stopping now; {LATER} writes the memories left.")
            os._exit(128 + signum)
        raised.set()
        _say(describe())
        _deadline(128 + signum)
        raise Interrupted(signum)

    kinds = (signal.SIGTERM, signal.SIGINT)
    previous = {kind: signal.signal(kind, handler) for kind in kinds}
    try:
        yield
    finally:
        for kind, old in previous.items():
            signal.signal(kind, old)


def _deadline(code: int) -> None:
    """Give the winding-down (writing the memories) :data:`GRACE_S`, then exit anyway."""

    def expire() -> None:
        _say(f"interrupted: stopped writing after {GRACE_S:.0f} s; {LATER} writes the rest.")
        os._exit(code)

    timer = threading.Timer(GRACE_S, expire)
    timer.daemon = True
    timer.start()


@contextmanager
def _agent(store: str | None, model: str | None) -> Iterator[tuple[Any, int]]:
    """The agent, and the longest message it accepts (from the same settings). Leaving
    the block writes the pending memories and closes the store and the thread file."""
    from memshelf.agent import open_agent

    settings = build_settings(store, model)
    check_store_file(settings, reads_only=False)
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
    """One turn: print the reply; exit 0 only once the turn's memories are written.

    SIGTERM or Ctrl-C stops the turn cleanly: one line on stderr says what became of
    it, the thread is left after the turn (the message kept, no half-finished reply),
    and the message's memories are written before exit (within GRACE_S) or by the next
    command that opens an agent on the store. Exit code 128 + the signal's number."""
    import time

    from memshelf.agent import memory_writer
    from memshelf.agent.turn import run_turn

    stage = ["opening"]
    said = _interruptible(lambda: _interrupted_line(stage[0]))
    try:
        with said, _agent(store, model) as (graph, limit):
            stage[0] = "answering"
            result = run_turn(
                graph, user, thread, message, max_chars=limit, wait_for_memories=False
            )
            if verbose:
                for fact in result.recalled:
                    typer.secho(f"recalled: {fact['text']}", fg=typer.colors.CYAN, err=True)
            typer.echo(result.reply)
            stage[0] = "answered"
            writer, start = memory_writer(graph), time.perf_counter()
            if writer is not None:
                writer.wait(user, thread)
                result.seconds["memory"] = time.perf_counter() - start
            if verbose:
                timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
                typer.secho(f"timings: {timing}", fg=typer.colors.CYAN, err=True)
    except Interrupted as stop:
        raise typer.Exit(stop.code) from None


def _interrupted_line(stage: str) -> str:
    """What became of an interrupted ``ask``, by how far it got."""
    if stage == "opening":
        return "interrupted: the message was not sent; nothing was saved."
    if stage == "answered":
        return (
            "interrupted: the reply was given; this turn's memories are written before "
            f"memshelf exits (or, past {GRACE_S:.0f} s, by {LATER})."
        )
    return (
        "interrupted: the answer was not finished. Your message is saved in the thread "
        f"and will be remembered: before memshelf exits, or (past {GRACE_S:.0f} s) by {LATER}."
    )


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
        typer.echo("bot> ", nl=False)
        try:
            _stream_reply(graph, user, thread, line)
        except KeyboardInterrupt:  # Ctrl-C stops this answer, not the chat
            typer.echo()
            typer.echo(
                "interrupted: the answer was not finished; your message is kept in the "
                "thread and will be remembered.",
                err=True,
            )
            continue
        typer.echo()


def _stream_reply(graph: Any, user: str, thread: str, line: str) -> None:
    """Print the reply as it comes; an interrupted turn is settled (see guarded_turn)."""
    from langchain_core.messages import AIMessage

    from memshelf.agent.turn import guarded_turn

    with guarded_turn(graph, user, thread, line) as (human, config):
        for chunk, meta in graph.stream({"messages": [human]}, config, stream_mode="messages"):
            if (
                meta.get("langgraph_node") == "respond"
                and isinstance(chunk, AIMessage)  # a chunk, or a non-streaming model's reply
                and not chunk.tool_calls
                and not getattr(chunk, "tool_call_chunks", None)
            ):
                typer.echo(str(chunk.text), nl=False)
