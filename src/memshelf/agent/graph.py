"""Wiring only: recall → respond ⇄ tools → remember, compiled with both memory layers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
from memshelf.config import Settings
from memshelf.memory import BackgroundWriter, MemoryWriter
from memshelf.stores import is_redis_url
from memshelf.threads import OwnedCheckpointer, owned


def checkpoint_path(settings: Settings) -> Path:
    path = Path(settings.data_dir) / "checkpoints.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _redis_password(settings: Settings) -> dict[str, str]:
    from memshelf.stores.redis import password_args

    secret = settings.redis_password
    return password_args(str(settings.store_url), secret.get_secret_value() if secret else None)


def default_checkpointer(settings: Settings, store: BaseStore | None = None) -> OwnedCheckpointer:
    """Thread memory beside the store, scoped by user: LangGraph's RedisSaver when the
    store is on Redis, else a SQLite file in the data dir (WAL, safe across processes).
    ``store`` keeps the registry of each user's threads."""
    import sqlite3

    if is_redis_url(settings.store_url):
        from langgraph.checkpoint.redis import RedisSaver

        saver = RedisSaver(redis_url=settings.store_url, connection_args=_redis_password(settings))
        saver.setup()
        return OwnedCheckpointer(saver, store)

    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(checkpoint_path(settings)), check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA secure_delete = ON")  # a deleted thread leaves no readable page
    return OwnedCheckpointer(SqliteSaver(conn), store)


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
    still pending."""
    import asyncio

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    settings = settings or Settings()
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
            saver = await stack.enter_async_context(
                AsyncSqliteSaver.from_conn_string(str(checkpoint_path(settings)))
            )
        graph = build_agent(
            store=store, checkpointer=saver, model=model, tools=tools, settings=settings
        )
        try:
            yield graph
        finally:
            writer = memory_writer(graph)
            if writer is not None:
                await asyncio.to_thread(writer.close)


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
    """
    settings = settings or Settings()
    if store is None:
        from memshelf.stores import open_store

        store = open_store(settings=settings)
    threads = owned(
        checkpointer if checkpointer is not None else default_checkpointer(settings), store
    )
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
    return compiled


def memory_writer(graph: Any) -> MemoryWriter | None:
    """The writer a graph from :func:`build_agent` hands its memories to."""
    writer: MemoryWriter | None = getattr(graph, "memory_writer", None)
    return writer
