"""Runs of the agent behind the LangGraph-compatible routes, kept in memory per process.

A run is one turn of the sync agent on a worker thread. What it produces is appended to
the run's event list, already framed as LangGraph's server frames it (``metadata`` first,
then ``values`` / ``updates`` / ``messages`` ..., ``error`` if it failed, ``end`` last),
and every reader — the stream that started it, ``join_stream``, ``wait``, ``join`` —
follows that list from the event loop. The worker never waits for a reader, so a reader
that goes away cannot block it; a stream that closes before ``end`` stops its run (unless
the caller asked to ``continue``), after the chunk in hand.

Runs on one thread take turns (``enqueue``) or are refused while one is active
(``reject``). Run records live in this process only: with ``--workers N`` a run is seen
by the process that started it, and the newest :data:`KEEP_FINISHED` finished runs are
kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends
from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from memshelf.errors import MemshelfError, NotFoundError
from memshelf.ops.threads import delete_thread, stream_turn
from memshelf.service.auth import Services
from memshelf.service.sse import dumps, frame
from memshelf.service.state import ServiceState

log = logging.getLogger(__name__)

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
StreamMode = Literal["values", "updates", "messages", "messages-tuple", "custom"]
STREAM_MODES: tuple[str, ...] = ("values", "updates", "messages", "messages-tuple", "custom")
ASSISTANT_ID = "agent"  # the one graph this service runs (LangGraph's default graph name)
RUN_WORKERS = 16
KEEP_FINISHED = 500
ALWAYS = ""  # the mode of events every reader gets (metadata, error, end)


class ThreadBusyError(Exception):
    """A run was asked for with ``multitask_strategy="reject"`` while one is active."""


class ServiceClosingError(Exception):
    """The service is shutting down and starts no more runs."""


def now() -> str:
    return datetime.now(UTC).isoformat()


def require_assistant(assistant_id: str) -> str:
    """The one assistant there is; any other id is not found."""
    if assistant_id != ASSISTANT_ID:
        raise NotFoundError(
            f"No assistant {assistant_id!r}: this service runs one graph, {ASSISTANT_ID!r}."
        )
    return assistant_id


@dataclass(frozen=True)
class Event:
    seq: int
    name: str
    mode: str  # the stream mode it belongs to; ALWAYS for metadata, error, end
    data: bytes  # JSON

    @property
    def sse(self) -> bytes:
        return frame(self.name, self.data, str(self.seq))


class Run:
    """One run: its record (``public()``), its events, and a flag that stops it."""

    def __init__(
        self,
        *,
        user_id: str,
        thread_id: str,
        modes: Sequence[str],
        metadata: dict[str, Any] | None = None,
        multitask_strategy: str = "enqueue",
        temporary: bool = False,
        recursion_limit: int | None = None,
    ) -> None:
        self.run_id = str(uuid.uuid4())
        self.user_id, self.thread_id = user_id, thread_id
        self.modes = tuple(dict.fromkeys(modes))
        self.metadata = dict(metadata or {})
        self.multitask_strategy = multitask_strategy
        self.temporary, self.recursion_limit = temporary, recursion_limit
        self.created_at = self.updated_at = now()
        self.status: RunStatus = "pending"
        self.values: Any = None
        self.error: dict[str, str] | None = None
        self.stop = threading.Event()
        self.finished = False
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.emit("metadata", ALWAYS, {"run_id": self.run_id, "attempt": 1})

    def public(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": ASSISTANT_ID,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "metadata": self.metadata,
            "multitask_strategy": self.multitask_strategy,
            "kwargs": {"stream_mode": list(self.modes)},
        }

    def result(self) -> Any:
        """What ``wait`` and ``join`` answer: the final values, or LangGraph's error shape."""
        return {"__error__": self.error} if self.error is not None else self.values

    # --- written by the worker ----------------------------------------------------------

    def emit(self, name: str, mode: str, data: Any) -> None:
        encoded = dumps(data)
        with self._lock:
            if self.finished:
                return
            self._events.append(Event(len(self._events), name, mode, encoded))
        self._wake()

    def set_status(self, status: RunStatus) -> None:
        self.status, self.updated_at = status, now()

    def finish(self, status: RunStatus) -> None:
        """The last event (``end``); later calls change nothing."""
        with self._lock:
            if self.finished:
                return
            self.set_status(status)
            self._events.append(Event(len(self._events), "end", ALWAYS, b"null"))
            self.finished = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody to wake
                loop.call_soon_threadsafe(event.set)

    # --- read from the event loop ---------------------------------------------------------

    async def _changed(self, seen: int, timeout: float | None) -> bool:
        """Wait until there is an event past ``seen`` or the run is over; False on timeout."""
        woken = asyncio.Event()
        entry = (asyncio.get_running_loop(), woken)
        with self._lock:
            if len(self._events) > seen or self.finished:
                return True
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(woken.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    async def events(
        self, start: int = 0, modes: Collection[str] | None = None, heartbeat_s: float = 15.0
    ) -> AsyncIterator[Event | None]:
        """The run's events from ``start`` (those of ``modes``, and metadata/error/end),
        live until ``end``; None after ``heartbeat_s`` without one."""
        seen = start
        while True:
            with self._lock:
                batch, finished = self._events[seen:], self.finished
            seen += len(batch)
            for event in batch:
                if modes is None or event.mode in modes or event.mode == ALWAYS:
                    yield event
            if finished:
                return
            if not batch and not await self._changed(seen, heartbeat_s):
                yield None

    async def done(self) -> None:
        while not self.finished:
            await self._changed(len(self._events), None)


class _Frames:
    """Turns the graph's ``(mode, chunk)`` pairs into LangGraph server events."""

    def __init__(self, modes: Sequence[str]) -> None:
        self.modes = set(modes)
        self.messages: dict[str, BaseMessage] = {}

    def graph_modes(self) -> list[str]:
        """Values always (the final state is the run's result), the rest on request."""
        wanted = {"values"} | (self.modes & {"updates", "custom"})
        if self.modes & {"messages", "messages-tuple"}:
            wanted.add("messages")
        return sorted(wanted)

    def __call__(self, mode: str, chunk: Any) -> Iterator[tuple[str, str, Any]]:
        if mode == "messages":
            message, meta = chunk
            if "messages-tuple" in self.modes:
                yield "messages", "messages-tuple", [message, meta]
            if "messages" in self.modes:
                yield from self._accumulated(message, meta)
        elif mode in self.modes:
            yield mode, mode, chunk

    def _accumulated(self, message: BaseMessage, meta: Any) -> Iterator[tuple[str, str, Any]]:
        """The ``messages`` mode: a message's metadata once, then each chunk as the whole
        message so far (``messages/partial``) or a finished one (``messages/complete``)."""
        key = str(message.id)
        seen = self.messages.get(key)
        if seen is None:
            yield "messages/metadata", "messages", {key: {"metadata": meta}}
        if isinstance(message, BaseMessageChunk):
            so_far = message if not isinstance(seen, BaseMessageChunk) else seen + message
            self.messages[key] = so_far
            yield "messages/partial", "messages", [message_chunk_to_message(so_far)]
        else:
            self.messages[key] = message
            yield "messages/complete", "messages", [message]


class RunManager:
    """Starts runs on worker threads, one at a time per thread, and finds them again."""

    def __init__(self, graph: Any, *, workers: int = RUN_WORKERS) -> None:
        self.graph = graph
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="memshelf-run")
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._active: dict[tuple[str, str], Run] = {}
        self._queued: dict[tuple[str, str], deque[tuple[Run, list[BaseMessage]]]] = {}
        self._closed = False

    def start(self, run: Run, messages: list[BaseMessage]) -> Run:
        """Start ``run`` now, or after the thread's active run (``enqueue``)."""
        key = (run.user_id, run.thread_id)
        with self._lock:
            if self._closed:
                raise ServiceClosingError("The service is shutting down; try again shortly.")
            busy = key in self._active
            if busy and run.multitask_strategy == "reject":
                raise ThreadBusyError(
                    f"Thread {run.thread_id!r} has a run in progress; wait for it, or send "
                    "multitask_strategy='enqueue' to run after it."
                )
            self._runs[run.run_id] = run
            self._trim()
            if busy:
                self._queued.setdefault(key, deque()).append((run, messages))
            else:
                self._active[key] = run
                self._pool.submit(self._execute, run, messages)
        return run

    def _trim(self) -> None:
        finished = [r for r in self._runs.values() if r.finished]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._runs[old.run_id]

    def find(self, user_id: str, thread_id: str, run_id: str) -> Run:
        """One of the user's runs on one of their threads; anyone else's is not found."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or (run.user_id, run.thread_id) != (user_id, thread_id):
            raise NotFoundError(
                f"Thread {thread_id!r} has no run {run_id!r} in this service process "
                "(runs are kept in memory, per process)."
            )
        return run

    def of_thread(self, user_id: str, thread_id: str, *, status: str | None = None) -> list[Run]:
        """The thread's runs this process knows, newest first."""
        with self._lock:
            runs = list(self._runs.values())
        return [
            r
            for r in reversed(runs)
            if (r.user_id, r.thread_id) == (user_id, thread_id)
            and (status is None or r.status == status)
        ]

    def busy(self, user_id: str, thread_id: str) -> bool:
        with self._lock:
            return (user_id, thread_id) in self._active

    def stop_thread(self, user_id: str, thread_id: str) -> list[Run]:
        """Stop the thread's active and queued runs (before the thread is deleted)."""
        with self._lock:
            runs = [r for r in self._runs.values() if not r.finished]
        found = [r for r in runs if (r.user_id, r.thread_id) == (user_id, thread_id)]
        for run in found:
            run.stop.set()
        return found

    def close(self) -> None:
        """Stop every run, let the workers finish the chunk in hand, start no more."""
        with self._lock:
            self._closed = True
            runs = [r for r in self._runs.values() if not r.finished]
            queued = [run for q in self._queued.values() for run, _ in q]
            self._queued.clear()
        for run in runs:
            run.stop.set()
        for run in queued:
            run.finish("interrupted")
        self._pool.shutdown(wait=True, cancel_futures=True)
        for run in runs:  # any that never started: their readers get `end`
            run.finish("interrupted")

    # --- the worker ------------------------------------------------------------------------

    def _execute(self, run: Run, messages: list[BaseMessage]) -> None:
        try:
            self._run(run, messages)
        finally:
            key = (run.user_id, run.thread_id)
            with self._lock:
                waiting = self._queued.get(key)
                if waiting and not self._closed:
                    nxt, nxt_messages = waiting.popleft()
                    if not waiting:
                        del self._queued[key]
                    self._active[key] = nxt
                    self._pool.submit(self._execute, nxt, nxt_messages)
                else:
                    self._active.pop(key, None)

    def _run(self, run: Run, messages: list[BaseMessage]) -> None:
        if run.stop.is_set():
            run.finish("interrupted")
            return
        run.set_status("running")
        frames = _Frames(run.modes)
        status: RunStatus = "success"
        try:
            for mode, chunk in stream_turn(
                self.graph,
                run.user_id,
                run.thread_id,
                messages,
                frames.graph_modes(),
                stop=run.stop,
                recursion_limit=run.recursion_limit,
            ):
                if mode == "values":
                    run.values = chunk
                for name, family, data in frames(mode, chunk):
                    run.emit(name, family, data)
            if run.stop.is_set():
                status = "interrupted"
        except MemshelfError as exc:
            run.error, status = {"error": type(exc).__name__, "message": str(exc)}, "error"
        except Exception as exc:  # a failed run must answer its readers, not vanish
            log.exception("Run %s failed", run.run_id)
            run.error = {
                "error": type(exc).__name__,
                "message": "The run failed unexpectedly; the service log has the details.",
            }
            status = "error"
        if run.error is not None:
            run.emit("error", ALWAYS, run.error)
        if run.temporary:
            with contextlib.suppress(NotFoundError):
                delete_thread(self.graph.checkpointer, run.user_id, run.thread_id)
        run.finish(status)


_manager_lock = threading.Lock()


def run_manager(services: ServiceState) -> RunManager:
    """The process's run manager, made on first use and stopped before the agent closes."""
    with _manager_lock:
        found = services.extras.get("runs")
        if not isinstance(found, RunManager):
            found = RunManager(services.graph)
            services.extras["runs"] = found
            services.on_close(found.close)
    return found


def _runs(services: Services) -> RunManager:
    return run_manager(services)


Runs = Annotated[RunManager, Depends(_runs)]
