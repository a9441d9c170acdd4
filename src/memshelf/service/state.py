"""What one service process holds open: settings, store, thread memory, agent, keys."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.config import Settings
from memshelf.memory import MemoryWriter
from memshelf.ops.keys import KeyRing
from memshelf.threads import OwnedCheckpointer


@dataclass
class ServiceState:
    """Built once by the app's lifespan and handed to every route through ``Services``.

    The agent is LangGraph's sync graph (the same one the CLI runs); routes run it in a
    worker thread, so the event loop never waits on the model, the store or SQLite.
    """

    settings: Settings
    store: BaseStore
    checkpointer: OwnedCheckpointer
    graph: Any
    keys: KeyRing
    extras: dict[str, Any] = field(default_factory=dict)
    _opened: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        store: BaseStore | None = None,
        model: BaseChatModel | None = None,
    ) -> ServiceState:
        """Open what ``settings`` names; a ``store``/``model`` passed in stays the caller's."""
        from memshelf.agent.graph import (
            build_agent,
            close_agent,
            close_checkpointer,
            default_checkpointer,
        )
        from memshelf.llm import chat_model
        from memshelf.stores import is_redis_url, open_store
        from memshelf.threads import owned

        with ExitStack() as opened:
            if store is None:
                store = opened.enter_context(open_store(settings=settings))
            saver = default_checkpointer(settings, store)
            opened.callback(close_checkpointer, saver)
            checkpointer = owned(saver, store)
            model = model or chat_model(settings=settings)
            if is_redis_url(settings.store_url):
                writer = _open_queue(opened, settings, store, model)
            else:
                writer = _open_writer(opened, settings, store, model)
            graph = build_agent(
                store=store,
                checkpointer=checkpointer,
                model=model,
                settings=settings,
                writer=writer,
            )
            opened.callback(close_agent, graph)
            return cls(
                settings=settings,
                store=store,
                checkpointer=checkpointer,
                graph=graph,
                keys=KeyRing(store),
                _opened=opened.pop_all(),
            )

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the service closes, before what it opened is closed
        (last registered, first called): runs stop before the agent they use."""
        self._opened.callback(callback)

    def close(self) -> None:
        """Write pending memories, then close the agent, thread memory and store."""
        self._opened.close()


def _open_writer(
    opened: ExitStack, settings: Settings, store: BaseStore, model: BaseChatModel
) -> MemoryWriter:
    """On SQLite each process extracts in a thread of its own; the writers share their
    statuses through the store, so any process (``--workers N``) answers the extraction
    status and ``wait_for_memory`` for a message another process took. It closes after
    the agent (last registered, first called), writing what is pending first."""
    from memshelf.memory import BackgroundWriter

    writer = BackgroundWriter(
        store,
        model,
        debounce_s=settings.extraction_debounce_s,
        kind_ttl=settings.memory_kind_ttl_days,
        share_status=True,
    )
    opened.callback(writer.close)
    return writer


def _open_queue(
    opened: ExitStack, settings: Settings, store: BaseStore, model: BaseChatModel
) -> MemoryWriter:
    """With a Redis store, memories are extracted by jobs on a Redis queue that every
    process shares; this process also runs a worker (MEMSHELF_EXTRACTION_CONCURRENCY jobs at
    once) unless MEMSHELF_EXTRACTION_WORKER=false.
    On close the writer stops first, then the worker finishes the jobs it is running
    (queued ones stay for the other workers), then the store closes."""
    from memshelf.memory.queue import ExtractionWorker, RedisJobWriter

    if settings.extraction_worker:
        worker = ExtractionWorker.from_settings(settings, store=store, model=model).start()
        opened.callback(worker.stop)
    writer = RedisJobWriter.from_settings(settings)
    opened.callback(writer.close)
    return writer
