"""Wiring only: recall → respond ⇄ tools → remember, compiled with both memory layers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.base import BaseStore

from memshelf.agent.nodes import Nodes
from memshelf.agent.state import AgentState
from memshelf.agent.tools import default_tools
from memshelf.config import Settings, ensure_data_dir
from memshelf.errors import StoreFileError
from memshelf.memory import BackgroundWriter, MemoryWriter
from memshelf.stores import is_redis_url
from memshelf.threads import OwnedCheckpointer, owned


def checkpoint_path(settings: Settings) -> Path:
    return ensure_data_dir(settings) / "checkpoints.db"  # a bad data dir: named with its setting


def _redis_password(settings: Settings) -> dict[str, str]:
    from memshelf.stores.redis import password_args

    secret = settings.redis_password
    return password_args(str(settings.store_url), secret.get_secret_value() if secret else None)


def default_checkpointer(settings: Settings, store: BaseStore | None = None) -> OwnedCheckpointer:
    """Thread memory beside the store, scoped by user: LangGraph's RedisSaver when the
    store is on Redis, else a SQLite file in the data dir (WAL, safe across processes).
    ``store`` keeps the registry of each user's threads. The connection is the caller's
    to close: :func:`close_checkpointer` (``open_agent`` does it for you)."""
    import sqlite3

    if is_redis_url(settings.store_url):
        from langgraph.checkpoint.redis import RedisSaver

        saver = RedisSaver(redis_url=settings.store_url, connection_args=_redis_password(settings))
        try:
            saver.setup()
        except BaseException:
            close_checkpointer(saver)
            raise
        return OwnedCheckpointer(saver, store)

    from langgraph.checkpoint.sqlite import SqliteSaver

    from memshelf.stores._sqlite_schema import file_errors

    path = str(checkpoint_path(settings))
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        try:
            with file_errors(path):  # a corrupted or read-only thread file: an error naming it
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA secure_delete = ON")  # a deleted thread leaves no page
        except StoreFileError as exc:
            damaged = _damaged_threads(path, exc)
            if damaged is None:
                raise
            raise damaged from exc.__cause__
        return OwnedCheckpointer(SqliteSaver(conn), store)
    except BaseException:
        conn.close()
        raise


def _damaged_threads(path: str, exc: StoreFileError) -> StoreFileError | None:
    """The error for a threads file SQLite cannot read; the store's advice (another
    --store, an export) would not touch this file."""
    said = str(exc.__cause__ or exc)
    if "not a database" not in said and "malformed" not in said:
        return None
    return StoreFileError(
        path,
        f"The threads file {path} is damaged (SQLite says {said!r}). Move it aside "
        f"(mv {path} {path}.damaged) and run again: a new one is started. Its conversation "
        "threads are lost; your memories are in the store file, untouched.",
    )


def close_checkpointer(saver: BaseCheckpointSaver[Any]) -> None:
    """Close the connection :func:`default_checkpointer` opened: the SQLite file's, or the
    Redis client the saver made for itself (a client passed to the saver stays open)."""
    import sqlite3

    inner = saver.inner if isinstance(saver, OwnedCheckpointer) else saver
    conn = getattr(inner, "conn", None)
    if isinstance(conn, sqlite3.Connection):
        conn.close()
    elif getattr(inner, "_owns_its_client", False):
        client = inner._redis  # type: ignore[attr-defined]
        client.close()
        pool = getattr(client, "connection_pool", None)  # a RedisCluster has none
        if pool is not None:
            pool.disconnect()


@contextmanager
def open_agent(
    *,
    store: BaseStore | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    model: BaseChatModel | None = None,
    tools: list[Any] | None = None,
    settings: Settings | None = None,
    writer: MemoryWriter | None = None,
) -> Iterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """:func:`build_agent` as a context manager, so nothing it opened outlives the block.

    Leaving the block writes the memories still pending, then closes the checkpointer's
    connection and the store — only those the agent opened itself: a store, checkpointer
    or writer you pass in stays open for you to close.
    """
    graph = build_agent(
        store=store,
        checkpointer=checkpointer,
        model=model,
        tools=tools,
        settings=settings,
        writer=writer,
    )
    try:
        yield graph
    finally:
        close_agent(graph)


def close_agent(graph: Any) -> None:
    """Close what :func:`build_agent` opened for ``graph``: first its background writer
    (pending memories are written), then the checkpointer's connection, then the store.
    Parts the caller passed in are left open. Safe to call twice."""
    opened: ExitStack | None = getattr(graph, "_memshelf_opened", None)
    if opened is not None:
        opened.close()


@asynccontextmanager
async def open_async_agent(
    *,
    store: BaseStore | None = None,
    model: BaseChatModel | None = None,
    tools: list[Any] | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """The same agent for ``ainvoke``/``astream`` (services): its thread memory is
    LangGraph's AsyncSqliteSaver (or AsyncRedisSaver for a redis:// store), whose
    connection lives as long as this context. Leaving the context writes the memories
    still pending and closes what it opened (not a ``store`` you pass in).

    Set-up blocks (opening the store runs file I/O and migrations, preparing the chat
    model checks its files): it runs in a worker thread, so the event loop keeps serving
    other tasks meanwhile.
    """
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if settings is None:
        settings = await asyncio.to_thread(Settings)  # reads the .env file
    async with AsyncExitStack() as stack:
        saver: BaseCheckpointSaver[Any]
        if is_redis_url(settings.store_url):
            from langgraph.checkpoint.redis.aio import AsyncRedisSaver

            redis_saver = await stack.enter_async_context(
                AsyncRedisSaver.from_conn_string(
                    settings.store_url, connection_args=_redis_password(settings)
                )
            )
            await redis_saver.asetup()
            saver = redis_saver
        else:
            path = await asyncio.to_thread(checkpoint_path, settings)
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(path)))
        graph = await _build_off_loop(
            store=store, checkpointer=saver, model=model, tools=tools, settings=settings
        )
        try:
            yield graph
        finally:
            await asyncio.to_thread(close_agent, graph)


async def _build_off_loop(**parts: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    """:func:`build_agent` in a worker thread. A thread cannot be stopped, so if the
    caller is cancelled meanwhile, what it builds is closed as soon as it is done."""
    task = asyncio.ensure_future(asyncio.to_thread(build_agent, **parts))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_unwanted)
        raise


def _close_unwanted(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is None:
        close_agent(task.result())


def build_agent(
    *,
    store: BaseStore | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    model: BaseChatModel | None = None,
    tools: list[Any] | None = None,
    settings: Settings | None = None,
    writer: MemoryWriter | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The research agent, compiled with a checkpointer (threads) and a store (the user).

    Defaults: memshelf's store from settings, the checkpointer beside it (a SQLite
    file in the data dir, or Redis when MEMSHELF_STORE_URL is redis://), the
    configured chat model (local unless MEMSHELF_CHAT_MODEL says otherwise) and
    every built-in tool, and a :class:`~memshelf.memory.BackgroundWriter` that extracts
    and consolidates memories after each reply (``memory_writer(graph).wait(user)``
    for read-your-writes). Whatever checkpointer is given is wrapped in
    :class:`~memshelf.threads.OwnedCheckpointer`: a thread belongs to the user who
    created it, so every run needs ``user_id`` as well as ``thread_id``.

    What it opens itself (the store, the checkpointer's connection, the writer) belongs
    to the graph: :func:`close_agent` closes it, or use :func:`open_agent`, which does.
    If set-up fails part-way, whatever was opened so far is closed before the error
    reaches you. Parts you pass in are never closed.
    """
    settings = settings or Settings()
    with ExitStack() as opened:
        if store is None:
            from memshelf.stores import open_store

            store = opened.enter_context(open_store(settings=settings))
        if checkpointer is None:
            checkpointer = default_checkpointer(settings, store)
            opened.callback(close_checkpointer, checkpointer)
        threads = owned(checkpointer, store)
        if model is None:
            from memshelf.llm import chat_model

            model = chat_model(settings=settings)
        tools = default_tools(settings) if tools is None else tools
        if writer is None:
            writer = BackgroundWriter(
                store,
                model,
                debounce_s=settings.extraction_debounce_s,
                kind_ttl=settings.memory_kind_ttl_days,
            )
            opened.callback(writer.close)  # first out: pending memories reach the store
        nodes = Nodes(
            model,
            tools,
            settings.recall_k,
            settings.max_tool_rounds,
            settings.max_message_chars,
            writer,
        )
        graph = StateGraph(AgentState)
        graph.add_node("recall", nodes.recall)
        graph.add_node("respond", nodes.respond)
        graph.add_node("remember", nodes.remember)
        graph.add_edge(START, "recall")
        graph.add_edge("recall", "respond")
        if tools:
            graph.add_node("tools", ToolNode(tools))
            graph.add_conditional_edges("respond", nodes.route, ["tools", "remember"])
            graph.add_edge("tools", "respond")
        else:
            graph.add_edge("respond", "remember")
        graph.add_edge("remember", END)
        compiled = graph.compile(checkpointer=threads, store=store)
        compiled.memory_writer = writer  # type: ignore[attr-defined]
        compiled._memshelf_opened = opened.pop_all()  # type: ignore[attr-defined]
    return compiled


def memory_writer(graph: Any) -> MemoryWriter | None:
    """The writer a graph from :func:`build_agent` hands its memories to."""
    writer: MemoryWriter | None = getattr(graph, "memory_writer", None)
    return writer
