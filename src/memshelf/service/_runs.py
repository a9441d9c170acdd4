"""Runs of the agent behind the LangGraph-compatible routes: events in memory, records in
the store.

A run is one turn of the sync agent on a worker thread. What it produces is appended to
the run's event list, already framed as LangGraph's server frames it (``metadata`` first,
then ``values`` / ``updates`` / ``messages`` ..., ``error`` if it failed, ``end`` last),
and every reader — the stream that started it, ``join_stream``, ``wait``, ``join`` —
follows that list from the event loop. The worker never waits for a reader, so a reader
that goes away cannot block it; a stream that closes before ``end`` stops its run (unless
the caller asked to ``continue``), after the chunk in hand.

Runs on one thread take turns (``enqueue``) or are refused while one is active
(``reject``), across service processes too (a lease per thread in the store). A run's
events live in the process that runs it; its record (status, times) is also in the store,
so with ``--workers N`` any process answers ``get``, ``join``, ``list``, ``cancel`` (a
flag in the store that the running process polls every :data:`CANCEL_POLL_S`) and
``join_stream`` (from the record: ``metadata``, the final ``values`` or ``error``, ``end``).
The running process refreshes the record's lease (``alive_until``) while the run is
unfinished; a record whose lease ran out is answered as ended in error ("Interrupted":
its process died) once its thread lease has lapsed too (a late refresh is not a death).

Finished runs' events are kept for :data:`KEEP_FINISHED_S` at most, and only while all
of them together stay under :data:`KEEP_FINISHED_BYTES` (and :data:`KEEP_FINISHED` runs):
past that the oldest are dropped from memory and answered from their record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException
from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message
from langgraph.store.base import BaseStore

from memshelf.agent.graph import memory_writer
from memshelf.errors import MemshelfError, NotFoundError
from memshelf.namespaces import encode_label
from memshelf.ops.forget import ForgetReport, forget_everything, runs_namespace
from memshelf.ops.threads import delete_thread, stream_turn
from memshelf.service.auth import Services
from memshelf.service.logs import safe_traceback
from memshelf.service.sse import dumps, frame
from memshelf.service.state import ServiceState

log = logging.getLogger(__name__)

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
StreamMode = Literal["values", "updates", "messages", "messages-tuple", "custom"]
STREAM_MODES: tuple[str, ...] = ("values", "updates", "messages", "messages-tuple", "custom")
ASSISTANT_ID = "agent"  # the one graph this service runs (LangGraph's default graph name)
RUN_WORKERS = 16
KEEP_FINISHED = 500  # finished runs whose events stay in memory, at most
KEEP_FINISHED_S = 600.0  # ... for this long after they end
KEEP_FINISHED_BYTES = 64 * 1024 * 1024  # ... and this many event bytes together
CANCEL_POLL_S = 0.5  # how often a process looks for cancels of its runs from others
CANCELS = ("run-cancels",)  # a flag per run id, read by key by the process running it
CANCEL_TTL_MIN = 60.0
INTERRUPTED = {
    "error": "Interrupted",
    "message": "The service process running this run stopped before it ended; "
    "the thread keeps the steps it finished. Start a new run.",
}
RECORD_TTL_MIN = 24 * 60.0  # a run's record (and a lease) lives a day in the store
LEASES = "leases"
STOP_RUNS_WAIT_S = 30.0  # how long a delete or forget waits for the runs it stops
LEASE_S = 30.0  # a lease not refreshed for this long is a dead process's
LEASE_MARGIN_S = LEASE_S / 6  # a holder whose own lease is this near expiry counts it lost
LEASE_POLL_S = 0.25
BLOCKS = "run-blocks"  # ("run-blocks", <user>): forget-me / thread deletes in progress
BLOCK_S = 600.0  # a block not lifted by then is a dead process's
_BLOCKED = (
    "Your data is being forgotten or this thread deleted; no run can start on it now. "
    "Retry once that request has answered."
)
_BUSY = (
    "Thread {!r} has a run in progress; wait for it, or send multitask_strategy='enqueue' "
    "to run after it."
)
ALWAYS = ""  # the mode of events every reader gets (metadata, error, end)


class ThreadBusyError(Exception):
    """A run was asked for with ``multitask_strategy="reject"`` while one is active."""


class ServiceClosingError(Exception):
    """The service is shutting down and starts no more runs."""


def now() -> str:
    return datetime.now(UTC).isoformat()


def _live(lease: dict[str, Any], margin: float = 0.0) -> bool:
    expires = lease.get("expires_at")
    return isinstance(expires, (int, float)) and expires > time.time() + margin


def lease_namespace(user_id: str) -> tuple[str, ...]:
    """``("runs", <user>, "leases")``: one claim per run on a thread (key ``thread/run``)."""
    return (*runs_namespace(user_id), LEASES)


def blocks_namespace(user_id: str) -> tuple[str, str]:
    """Where a forget-me or thread delete in any process says no run may start; outside
    ``("runs", <user>)``, which forget-me itself deletes."""
    return (BLOCKS, encode_label(user_id))


def _lease_key(run: Run) -> str:
    return f"{run.thread_id}/{run.run_id}"


def settle_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored run record as it stands: an unfinished run whose process stopped
    refreshing its lease ended in error (``Interrupted``)."""
    alive = record.get("alive_until")
    if record.get("finished") or not isinstance(alive, (int, float)) or alive > time.time():
        return record
    return {**record, "status": "error", "error": INTERRUPTED, "finished": True}


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
        self.settled = threading.Event()  # after `end`, its lease and record: all written
        self._events: list[Event] = []
        self.size = 0  # bytes of its events
        self.saving = threading.Lock()  # its record is built and written by one at a time
        self.finished_at = 0.0  # time.monotonic() at `end`
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
            self.size += len(encoded)
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
            self.finished, self.finished_at = True, time.monotonic()
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
    """Starts runs on worker threads, one at a time per thread, and finds them again.

    With a ``store``, every run is also written there (``("runs", <user>)``, a record per
    run) so another service process answers ``get``/``join``/``list`` for it, and a run
    holds a lease on its thread (``("runs", <user>, "leases")``) so a run on the same
    thread in another process waits (``enqueue``) or is refused (``reject``). A lease is a
    claim per run (:meth:`_try_lease`): write your own, then read them all, and back off if
    any other is live. A process that dies leaves its lease to expire after
    :data:`LEASE_S`; one that finds its own lease lapsed or taken over stops its run.
    Forget-me and thread deletes block runs with a record in the store
    (:func:`blocks_namespace`) that every process checks.
    """

    def __init__(
        self,
        graph: Any,
        *,
        store: BaseStore | None = None,
        workers: int = RUN_WORKERS,
        keep_finished_s: float = KEEP_FINISHED_S,
        keep_finished_bytes: int = KEEP_FINISHED_BYTES,
    ) -> None:
        self.graph, self.store = graph, store
        self.keep_finished_s, self.keep_finished_bytes = keep_finished_s, keep_finished_bytes
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="memshelf-run")
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._active: dict[tuple[str, str], Run] = {}
        self._queued: dict[tuple[str, str], deque[tuple[Run, list[BaseMessage]]]] = {}
        self._blocked: dict[tuple[str, str | None], int] = {}  # (user, thread or None: all)
        self._leased: dict[str, Run] = {}
        self._closed = False
        self._stopping = threading.Event()
        if store is not None:
            threading.Thread(target=self._refresh_leases, daemon=True).start()
            threading.Thread(target=self._poll_cancels, daemon=True).start()

    def start(self, run: Run, messages: list[BaseMessage]) -> Run:
        """Start ``run`` now, or after the thread's active run (``enqueue``). Blocking (the
        lease is read from the store): call it from a worker thread."""
        key = (run.user_id, run.thread_id)
        self.refuse_if_blocked(run.user_id, run.thread_id)  # in any process
        with self._lock:
            if self._closed:
                raise ServiceClosingError("The service is shutting down; try again shortly.")
            if self._blocked.get((run.user_id, None)) or self._blocked.get(key):
                raise ThreadBusyError(_BLOCKED)
            busy = key in self._active
            if busy and run.multitask_strategy == "reject":
                raise ThreadBusyError(_BUSY.format(run.thread_id))
            self._runs[run.run_id] = run
            self._trim()
            if busy:
                self._queued.setdefault(key, deque()).append((run, messages))
            else:
                self._active[key] = run
        self._save(run)
        if busy:
            return run
        leased = False
        if run.multitask_strategy == "reject" and self.store is not None:
            leased = self._try_lease(run)
            if not leased:  # a run in another process has the thread
                with self._lock:
                    del self._runs[run.run_id]
                self._hand_on(key)
                self._forget_record(run)
                raise ThreadBusyError(_BUSY.format(run.thread_id))
        self._pool.submit(self._execute, run, messages, leased)
        return run

    def refuse_if_blocked(self, user_id: str, thread_id: str | None) -> None:
        """Refuse a run early (before its thread is made) while the user is forgotten or the
        thread deleted."""
        with self._lock:
            blocked = self._blocked.get((user_id, None)) or (
                thread_id is not None and self._blocked.get((user_id, thread_id))
            )
        if blocked or self._blocked_in_store(user_id, thread_id):
            raise ThreadBusyError(_BLOCKED)

    def _blocked_in_store(self, user_id: str, thread_id: str | None) -> bool:
        """Whether a forget-me (any thread) or a delete of ``thread_id`` in any process is
        in progress."""
        if self.store is None:
            return False
        found = self.store.search(blocks_namespace(user_id), limit=100)
        return any(_live(b.value) and b.value.get("thread_id") in ("", thread_id) for b in found)

    def _trim(self) -> None:
        """Drop the oldest finished runs (their record answers for them) past the count,
        age or byte bound. Call with ``_lock`` held."""
        finished = [r for r in self._runs.values() if r.finished and r.settled.is_set()]
        finished.sort(key=lambda r: r.finished_at)
        total = sum(r.size for r in finished)
        oldest = time.monotonic() - self.keep_finished_s
        for count, old in enumerate(finished):
            left = len(finished) - count
            within = left <= KEEP_FINISHED and total <= self.keep_finished_bytes
            if within and old.finished_at > oldest:
                break
            del self._runs[old.run_id]
            total -= old.size

    def trim(self) -> int:
        """Apply the bounds now; the bytes of finished runs' events still kept."""
        with self._lock:
            self._trim()
            return sum(r.size for r in self._runs.values() if r.finished)

    def find(self, user_id: str, thread_id: str, run_id: str) -> Run:
        """One of the user's runs on one of their threads; anyone else's is not found."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or (run.user_id, run.thread_id) != (user_id, thread_id):
            raise NotFoundError(f"Thread {thread_id!r} has no run {run_id!r}.")
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

    # --- records other processes read ------------------------------------------------------

    def record(self, user_id: str, thread_id: str, run_id: str) -> dict[str, Any]:
        """A run's record as any process wrote it (a run of another process); not found
        like a missing one."""
        item = None
        if self.store is not None and 0 < len(run_id) <= 64:
            item = self.store.get(runs_namespace(user_id), run_id)
        if item is None or item.value.get("thread_id") != thread_id:
            raise NotFoundError(f"Thread {thread_id!r} has no run {run_id!r}.")
        return self._settle(user_id, dict(item.value))

    def _settle(self, user_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """:func:`settle_record`, but a run whose thread lease is still live is not
        Interrupted: only its record's refresh is late."""
        settled = settle_record(record)
        if settled is record or self.store is None:
            return settled
        key = f"{record.get('thread_id')}/{record.get('run_id')}"
        with contextlib.suppress(Exception):
            lease = self.store.get(lease_namespace(user_id), key)
            if lease is not None and _live(lease.value):
                return record
        return settled

    def records(self, user_id: str, thread_id: str) -> list[dict[str, Any]]:
        """The thread's run records from every process, newest first."""
        if self.store is None:
            return []
        found = self.store.search(
            runs_namespace(user_id), filter={"thread_id": thread_id}, limit=KEEP_FINISHED
        )
        values = [self._settle(user_id, dict(i.value)) for i in found if len(i.namespace) == 2]
        return sorted(values, key=lambda v: str(v.get("created_at")), reverse=True)

    def _save(self, run: Run) -> None:
        if self.store is None or run.temporary:
            return
        try:
            with run.saving:  # built inside: the last write holds the newest state
                record = {
                    **run.public(),
                    "error": run.error,
                    "finished": run.finished,
                    "alive_until": time.time() + LEASE_S,
                }
                self.store.put(
                    runs_namespace(run.user_id), run.run_id, record, index=False, ttl=RECORD_TTL_MIN
                )
        except Exception as exc:  # a record is for other processes; the run goes on
            log.warning("Could not save run %s: %s", run.run_id, type(exc).__name__)

    def request_cancel(self, user_id: str, run_id: str) -> None:
        """Ask the process that runs ``run_id`` (any process) to stop it: a flag in the
        store it polls. The caller has checked that the run is the user's."""
        assert self.store is not None
        flag = {"at": time.time(), "user_id": user_id}
        self.store.put(CANCELS, run_id, flag, index=False, ttl=CANCEL_TTL_MIN)

    def _poll_cancels(self) -> None:
        """Stop this process's runs that another process was asked to cancel: one read
        by key per unfinished run and round, so no process reads other users' flags. A
        flag counts only if it names the run's own user."""
        assert self.store is not None
        while not self._stopping.wait(CANCEL_POLL_S):
            with self._lock:
                running = [r for r in self._runs.values() if not r.finished]
            for run in running:
                try:
                    flag = self.store.get(CANCELS, run.run_id)
                except Exception as exc:  # retried next round
                    log.warning("Could not read a run cancel: %s", type(exc).__name__)
                    break
                if flag is not None and flag.value.get("user_id") == run.user_id:
                    run.stop.set()
                    with contextlib.suppress(Exception):
                        self.store.delete(CANCELS, run.run_id)

    def _forget_record(self, run: Run) -> None:
        if self.store is not None and not run.temporary:
            with contextlib.suppress(Exception):
                self.store.delete(runs_namespace(run.user_id), run.run_id)

    # --- thread leases across processes ----------------------------------------------------

    def leased_elsewhere(self, user_id: str, thread_id: str | None = None) -> bool:
        """Whether a live run of another process holds (or is taking) one of the user's
        threads (``thread_id``) or any of them (None)."""
        if self.store is None:
            return False
        where = None if thread_id is None else {"thread_id": thread_id}
        items = self.store.search(lease_namespace(user_id), filter=where, limit=1000)
        with self._lock:
            mine = set(self._leased)
        return any(_live(i.value) and i.value.get("run_id") not in mine for i in items)

    def _write_lease(self, run: Run, held_since: float | None) -> None:
        assert self.store is not None
        lease = {
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "expires_at": time.time() + LEASE_S,
            "held_since": held_since,
        }
        self.store.put(
            lease_namespace(run.user_id), _lease_key(run), lease, index=False, ttl=RECORD_TTL_MIN
        )

    def _others(self, run: Run) -> list[dict[str, Any]]:
        """The live claims on the run's thread other than its own."""
        assert self.store is not None
        found = self.store.search(
            lease_namespace(run.user_id), filter={"thread_id": run.thread_id}, limit=100
        )
        return [i.value for i in found if i.value.get("run_id") != run.run_id and _live(i.value)]

    def _drop_claim(self, run: Run) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.delete(lease_namespace(run.user_id), _lease_key(run))

    def _try_lease(self, run: Run) -> bool:
        """Take the thread's lease: write this run's own claim, then read every claim on the
        thread and back off if another is live, or if a forget-me or delete blocks it.

        Claims never overwrite each other and each taker writes before it reads, so of two
        racing the later reader sees the earlier one's claim, however long either was
        delayed: never two holders (both may back off; ``enqueue`` retries)."""
        assert self.store is not None
        self._write_lease(run, None)
        if self._others(run) or self._blocked_in_store(run.user_id, run.thread_id):
            self._drop_claim(run)
            return False
        with self._lock:
            self._leased[run.run_id] = run
        with contextlib.suppress(Exception):  # the claim above already holds it
            self._write_lease(run, time.time())
        return True

    def _lease(self, run: Run) -> bool:
        """Wait for the thread's lease (``enqueue`` across processes); False if stopped."""
        while not self._try_lease(run):
            # jittered: two takers that backed off together do not retry in step
            if run.stop.wait(LEASE_POLL_S * random.uniform(0.5, 1.5)) or self._stopping.is_set():
                return False
        return True

    def _release(self, run: Run) -> None:
        with self._lock:
            held = run.run_id in self._leased
        if not held or self.store is None:
            return
        self._drop_claim(run)
        with self._lock:  # only now: until the lease is gone it is this process's
            self._leased.pop(run.run_id, None)

    def _refresh_lease(self, run: Run) -> bool:
        """Extend the run's lease if it still holds it; False (and the run stopped) once
        it lapsed (this process stalled past :data:`LEASE_S`) or a run that took the
        thread after it holds it now: never two holders writing one thread."""
        assert self.store is not None
        mine = self.store.get(lease_namespace(run.user_id), _lease_key(run))
        since = None if mine is None else mine.value.get("held_since")
        lost = mine is None or not _live(mine.value, LEASE_MARGIN_S)
        if not lost:
            self._write_lease(run, since)
            lost = any(
                isinstance(o.get("held_since"), (int, float))
                and (not isinstance(since, (int, float)) or o["held_since"] > since)
                for o in self._others(run)
            )
        if lost:
            log.warning("Run %s lost its thread lease; stopping it.", run.run_id)
            run.stop.set()
            self._drop_claim(run)
            with self._lock:
                self._leased.pop(run.run_id, None)
        return not lost

    def _refresh_leases(self) -> None:
        """Refresh the thread leases and the unfinished run records' leases (so other
        processes know this one lives), and drop finished runs past their time."""
        while not self._stopping.wait(LEASE_S / 3):
            with self._lock:
                leased = list(self._leased.values())
                unfinished = [r for r in self._runs.values() if not r.finished]
                self._trim()
            for run in leased:
                try:
                    self._refresh_lease(run)
                except Exception as exc:  # retried next round; the lease outlives one miss
                    log.warning("Could not refresh a run lease: %s", type(exc).__name__)
            for run in unfinished:
                if not run.finished:
                    self._save(run)

    # --- stopping --------------------------------------------------------------------------

    def stop_thread(self, user_id: str, thread_id: str) -> list[Run]:
        """Stop the thread's active and queued runs (before the thread is deleted)."""
        return self._stop(lambda r: (r.user_id, r.thread_id) == (user_id, thread_id))

    def stop_user(self, user_id: str) -> list[Run]:
        """Stop every run of the user's in this process, queued ones included."""
        return self._stop(lambda r: r.user_id == user_id)

    def _stop(self, which: Callable[[Run], bool]) -> list[Run]:
        with self._lock:
            found = [r for r in self._runs.values() if not r.finished and which(r)]
            dropped = []
            for key, queue in list(self._queued.items()):
                dropped += [run for run, _ in queue if which(run)]
                kept = deque((run, m) for run, m in queue if not which(run))
                if kept:
                    self._queued[key] = kept
                else:
                    del self._queued[key]
        for run in found:
            run.stop.set()
        for run in dropped:  # never started: nothing to wait for
            run.finish("interrupted")
            self._save(run)
            run.settled.set()
        return found

    @contextlib.contextmanager
    def blocking(self, user_id: str, thread_id: str | None = None) -> Iterator[None]:
        """While inside, no run of the user's starts (on ``thread_id``, or on any thread)
        in this process, nor in any other (a record in the store, checked by ``start`` and
        by the lease take; it lapses after :data:`BLOCK_S` if this process dies)."""
        key = (user_id, thread_id)
        with self._lock:
            self._blocked[key] = self._blocked.get(key, 0) + 1
        block_key = str(uuid.uuid4())
        try:
            if self.store is not None:
                block = {"thread_id": thread_id or "", "expires_at": time.time() + BLOCK_S}
                ns = blocks_namespace(user_id)
                self.store.put(ns, block_key, block, index=False, ttl=BLOCK_S / 60)
            yield
        finally:
            if self.store is not None:
                with contextlib.suppress(Exception):
                    self.store.delete(blocks_namespace(user_id), block_key)
            with self._lock:
                self._blocked[key] -= 1
                if not self._blocked[key]:
                    del self._blocked[key]

    def close(self) -> None:
        """Stop every run, let the workers finish the chunk in hand, start no more."""
        with self._lock:
            self._closed = True
            runs = [r for r in self._runs.values() if not r.finished]
            queued = [run for q in self._queued.values() for run, _ in q]
            self._queued.clear()
        self._stopping.set()
        for run in runs:
            run.stop.set()
        for run in queued:
            run.finish("interrupted")
        self._pool.shutdown(wait=True, cancel_futures=True)
        for run in runs:  # any that never started: their readers get `end`
            run.finish("interrupted")
            self._save(run)
            self._release(run)
            run.settled.set()

    # --- the worker ------------------------------------------------------------------------

    def _execute(self, run: Run, messages: list[BaseMessage], leased: bool = False) -> None:
        try:
            if leased or self.store is None or self._lease(run):
                self._run(run, messages)
            else:
                run.finish("interrupted")
        finally:
            self._release(run)
            self._save(run)
            run.settled.set()
            self._hand_on((run.user_id, run.thread_id))

    def _hand_on(self, key: tuple[str, str]) -> None:
        """The thread's slot is free: start its next queued run, or free it."""
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
        self._save(run)
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
            if exc.__cause__ is not None:  # e.g. a provider's failure behind a ModelError
                log.warning(
                    "Run %s failed: %s from %s",
                    run.run_id,
                    type(exc).__name__,
                    type(exc.__cause__).__name__,
                )
            run.error, status = {"error": type(exc).__name__, "message": str(exc)}, "error"
        except Exception as exc:  # a failed run must answer its readers, not vanish
            log.error(  # type and frames only: the error's text can quote the user
                "Run %s failed: %s",
                run.run_id,
                type(exc).__name__,
                extra={"trace": safe_traceback(exc)},
            )
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


def stopped(runs: Sequence[Run], timeout: float) -> bool:
    """Whether every one of ``runs`` ended (its record and lease written) within ``timeout``
    (blocks: call it from a worker thread)."""
    deadline = time.monotonic() + timeout
    return all(r.settled.wait(max(0.0, deadline - time.monotonic())) for r in runs)


_manager_lock = threading.Lock()


def run_manager(services: ServiceState) -> RunManager:
    """The process's run manager, made on first use and stopped before the agent closes."""
    with _manager_lock:
        found = services.extras.get("runs")
        if not isinstance(found, RunManager):
            found = RunManager(services.graph, store=services.store)
            services.extras["runs"] = found
            services.on_close(found.close)
    return found


def _runs(services: Services) -> RunManager:
    return run_manager(services)


Runs = Annotated[RunManager, Depends(_runs)]


_RAN_MEANWHILE = (
    "A run of yours started while your data was being forgotten; "
    "send the forget request again to delete what it wrote."
)


def forget_user(state: ServiceState, user_id: str) -> ForgetReport:
    """Forget everything about ``user_id`` with their runs stopped first and none
    starting meanwhile (the block is in the store, so every process honours it): the one
    path of the API's ``/v1/me/forget`` and the inspector's forget-me. 409 when a run
    does not stop in time, runs in another process, or lands during the forget."""
    runs = run_manager(state)
    with runs.blocking(user_id):
        if not stopped(runs.stop_user(user_id), STOP_RUNS_WAIT_S) or runs.leased_elsewhere(user_id):
            raise HTTPException(409, "A run of yours is still in progress; cancel it and retry.")
        report = forget_everything(
            state.store, state.checkpointer, user_id, writer=memory_writer(state.graph)
        )
        if runs.leased_elsewhere(user_id):  # blocked in the store: never, but a run that
            raise HTTPException(409, _RAN_MEANWHILE)  # landed during it would keep data
    return report
