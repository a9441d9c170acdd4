"""The write path off the reply's latency: extract → consolidate in the background.

:class:`MemoryWriter` is the interface (a Redis job queue can back it in the
service); :class:`BackgroundWriter` is the in-process default. Per thread it
debounces (messages arriving within ``debounce_s`` of each other are extracted
together), keys jobs by (user, thread, message id) so a job submitted twice runs
once, retries failures with exponential backoff, and keeps a status per thread.
An extraction failure never fails the turn: it is logged (the error's type, never
the message) and shown in :meth:`MemoryWriter.status`; a failed batch is retried
alone, so later messages of the thread are not lost with it. :meth:`MemoryWriter.wait` gives
read-your-writes; :meth:`MemoryWriter.close` flushes what is pending.

With ``share_status=True`` (the service on SQLite, where ``--workers N`` runs one writer
per process) the writer also publishes each thread's status to the store, under
``("extraction", <user>)`` (a namespace no user route reaches), one record per writer
and thread, refreshed while the thread is busy. :meth:`BackgroundWriter.status` and
:meth:`BackgroundWriter.wait` then answer for every process's writer: a message told
through process 1 is waited for by a read through process 2. A busy record whose writer
stopped refreshing it (the process died) counts as failed after ``STATUS_LEASE_S``.

With ``durable=True`` (the default) every job accepted is also written to the store
until it is extracted (:mod:`memshelf.memory.journal`): a writer that starts, and every
running writer every few seconds, takes over the jobs of writers that died (SIGKILL,
OOM) and runs them, once across processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.memory.consolidate import Outcome, consolidate
from memshelf.memory.extract import extract_facts, states_something
from memshelf.memory.journal import JobJournal, forget_jobs, job_fields
from memshelf.memory.types import Provenance
from memshelf.namespaces import encode_label

log = logging.getLogger(__name__)
SEEN_LIMIT = 100_000  # job ids remembered for de-duplication
MAX_BATCH = 8  # messages of one thread extracted together at most
State = Literal["idle", "pending", "running", "done", "failed"]
STATUS_ROOT = "extraction"
FORGOTTEN_ROOT = "extraction-forgotten"  # ("extraction-forgotten", <user>): when forgotten
STATUS_LEASE_S = 30.0  # a busy status not refreshed for this long is a dead process's
STATUS_TTL_MIN = 7 * 24 * 60.0  # a quiet thread's shared status is kept a week
STATUS_POLL_S = 0.1  # wait() polls other processes' statuses this often
GONE = "WriterStopped"  # the error of a busy status whose process stopped refreshing it


@dataclass(frozen=True)
class ExtractionJob:
    """One user message to remember from."""

    user_id: str
    thread_id: str
    message_id: str
    text: str
    previous: str | None = None  # the assistant message the user answered
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class ThreadStatus:
    state: State = "idle"
    error: str | None = None
    attempts: int = 0
    outcomes: list[Outcome] = field(default_factory=list)  # of the last finished batch
    done_messages: int = 0
    updated_at: float = 0.0  # time.time() of the last change (0: never)


@dataclass(frozen=True)
class Backlog:
    """What a writer has yet to do, for readiness probes and metrics."""

    queued: int  # messages waiting for extraction
    running: int  # threads whose batch is being extracted now
    oldest_s: float  # age of the oldest queued message: the extraction lag (0 when none)
    alive: bool  # accepting jobs, with a worker on them whenever some wait


class MemoryWriter(Protocol):
    def submit(self, job: ExtractionJob) -> None: ...
    def status(self, user_id: str, thread_id: str) -> ThreadStatus: ...
    def wait(
        self, user_id: str, thread_id: str | None = None, timeout: float | None = None
    ) -> bool: ...
    def close(self, timeout: float | None = None) -> None: ...


def status_namespace(user_id: str) -> tuple[str, str]:
    """``("extraction", <user>)``: the writers' shared statuses of the user's threads."""
    return (STATUS_ROOT, encode_label(user_id))


def forgotten_at(store: BaseStore, user_id: str) -> float:
    """When the user was last forgotten (0 if never or unreadable): every writer drops its
    statuses from before then, so none is answered or published again."""
    try:
        item = store.get((FORGOTTEN_ROOT, encode_label(user_id)), "at")
    except Exception as exc:
        log.warning("Could not read a forget marker: %s", type(exc).__name__)
        return 0.0
    at = None if item is None else item.value.get("at")
    return float(at) if isinstance(at, (int, float)) else 0.0


def forget_extraction(store: BaseStore, user_id: str) -> None:
    """Delete what every writer keeps about the user in the store: shared statuses
    (they name threads) and unfinished jobs (they quote messages); first mark the user
    forgotten, so writers in other processes drop what they hold in memory."""
    ttl = STATUS_TTL_MIN if getattr(store, "supports_ttl", False) else None
    marker = {"at": time.time()}
    store.put((FORGOTTEN_ROOT, encode_label(user_id)), "at", marker, index=False, ttl=ttl)
    namespace = status_namespace(user_id)
    while found := store.search(namespace, limit=500):
        for item in found:
            store.delete(item.namespace, item.key)
    forget_jobs(store, user_id)


def _busy(record: Mapping[str, object], now: float) -> bool:
    alive = record.get("alive_until")
    live = isinstance(alive, (int, float)) and alive > now
    return record.get("state") in ("pending", "running") and live


def merge_statuses(records: list[Mapping[str, Any]]) -> ThreadStatus:
    """One thread's status from its writers' records (see :meth:`BackgroundWriter.record`):
    a live running record beats a live pending one beats the newest other; a busy record
    past its lease reads "failed" (its process stopped). Messages done add up."""
    now = time.time()

    def newest(found: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        return max(found, key=lambda r: float(r.get("updated_at", 0)), default=None)

    busy = [r for r in records if _busy(r, now)]
    chosen = (
        newest([r for r in busy if r.get("state") == "running"])
        or newest(busy)
        or newest(list(records))
    )
    status = _from_record(chosen)
    status.done_messages = sum(int(r.get("done_messages", 0)) for r in records)
    return status


def _from_record(record: Mapping[str, Any] | None) -> ThreadStatus:
    if record is None:
        return ThreadStatus()
    state, error = str(record.get("state")), record.get("error")
    if state in ("pending", "running") and not _busy(record, time.time()):
        state, error = "failed", f"{GONE}: the process extracting this thread stopped"
    outcomes = [
        Outcome(**{**o, "text": ""}) for o in record.get("outcomes", []) if isinstance(o, dict)
    ]
    return ThreadStatus(
        state=state if state in get_args(State) else "idle",  # type: ignore[arg-type]
        error=str(error) if error else None,
        attempts=int(record.get("attempts", 0)),
        outcomes=outcomes,
        done_messages=int(record.get("done_messages", 0)),
        updated_at=float(record.get("updated_at", 0)),
    )


def model_id(model: BaseChatModel) -> str:
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return str(name or model._llm_type)


def remember(
    store: BaseStore,
    model: BaseChatModel,
    jobs: list[ExtractionJob],
    *,
    kind_ttl: Mapping[str, float | None] | None = None,
) -> list[Outcome]:
    """Extract from the jobs' messages (one thread, in order) and consolidate each fact."""
    first, last = jobs[0], jobs[-1]
    text = "\n".join(j.text for j in jobs if states_something(j.text))
    if not text:
        return []
    provenance = Provenance(
        thread_id=last.thread_id,
        message_id=",".join(j.message_id for j in jobs),
        source="extraction",
        model=model_id(model),
    )
    facts = extract_facts(model, text, previous=first.previous, at=last.at)
    return [
        consolidate(store, model, last.user_id, fact, provenance, kind_ttl=kind_ttl)
        for fact in facts
    ]


class BackgroundWriter:
    """In-process writer: one daemon thread, per-thread debounce, retries, statuses."""

    def __init__(
        self,
        store: BaseStore,
        model: BaseChatModel,
        *,
        debounce_s: float = 0.3,
        retries: int = 3,
        backoff_s: float = 1.0,
        kind_ttl: Mapping[str, float | None] | None = None,
        share_status: bool = False,
        durable: bool = True,
    ) -> None:
        self.store, self.model = store, model
        self.share_status = share_status
        self.writer_id = uuid.uuid4().hex[:12]  # names this writer's shared status records
        self._publishing = threading.Lock()  # one store write of a status at a time, in order
        self._beating = threading.Event()
        self.debounce_s, self.retries, self.backoff_s = debounce_s, retries, backoff_s
        self.kind_ttl = kind_ttl
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], list[ExtractionJob]] = {}
        self._due: dict[tuple[str, str], float] = {}
        self._running: set[tuple[str, str]] = set()
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._status: dict[tuple[str, str], ThreadStatus] = {}
        self._retry: dict[tuple[str, str], int] = {}
        self._closed = False
        self._worker: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self._journal = JobJournal(store, self.writer_id) if durable else None
        self._swept = threading.Event()  # the first look for dead writers' jobs is over
        if self._journal is None:
            self._swept.set()
        else:
            self._guarded(self._journal.beat)  # before any job names this writer its owner
            self._start_beat()

    # --- the interface -----------------------------------------------------------------

    def submit(self, job: ExtractionJob) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("This memory writer is closed.")
            if (job.user_id, job.thread_id, job.message_id) in self._seen:
                return
        journal = self._journal
        if journal is not None and self._guarded(journal.record, job) is False:
            return  # a live writer elsewhere has it: it runs there
        self._enqueue(job)

    def hold(self, job: ExtractionJob) -> None:
        """Journal a job without queueing it: a turn calls this before the model answers,
        so if the process dies before :meth:`submit`, the next writer extracts it."""
        if self._journal is not None:
            self._guarded(self._journal.record, job)

    def _enqueue(self, job: ExtractionJob, *, now: bool = False) -> None:
        """Queue a job (submitted, or taken over from a dead writer) unless already seen;
        ``now`` skips the debounce (an adopted job has waited long enough)."""
        self._drop_forgotten(job.user_id)  # a status from before a forget starts afresh
        with self._cond:
            ident = (job.user_id, job.thread_id, job.message_id)
            if ident in self._seen or self._closed:
                return
            self._seen[ident] = None
            if len(self._seen) > SEEN_LIMIT:  # a long-running service: remember the recent
                self._seen.popitem(last=False)
            key = (job.user_id, job.thread_id)
            self._pending.setdefault(key, []).append(job)
            self._due[key] = time.monotonic() + (0.0 if now else self.debounce_s)
            status = self._status.setdefault(key, ThreadStatus())
            if status.state != "running":
                status.state = "pending"
            status.updated_at = time.time()
            if self._worker is None:
                self._start_worker()
            self._cond.notify_all()
        self._publish(key)

    def status(self, user_id: str, thread_id: str) -> ThreadStatus:
        """The thread's status: this writer's, merged with other processes' when shared."""
        forgotten = self._drop_forgotten(user_id)
        with self._cond:
            mine = self._status.get((user_id, thread_id))
            record = None if mine is None else self._record(thread_id, mine)
        if not self.share_status:
            return mine or ThreadStatus()
        found = self._shared(user_id, thread_id)
        records = [
            r
            for r in found
            if r.get("writer") != self.writer_id and float(r.get("updated_at", 0)) >= forgotten
        ]
        return merge_statuses(records + ([record] if record else []))

    def backlog(self) -> Backlog:
        """Pending messages, the age of the oldest, and whether the writer still works."""
        with self._cond:
            queued = sum(len(jobs) for jobs in self._pending.values())
            oldest = min((j.at for jobs in self._pending.values() for j in jobs), default=None)
            running, worker = len(self._running), self._worker
            busy = queued or running
            alive = not self._closed and (not busy or (worker is not None and worker.is_alive()))
        lag = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        return Backlog(queued=queued, running=running, oldest_s=max(0.0, lag), alive=alive)

    def wait(
        self, user_id: str, thread_id: str | None = None, timeout: float | None = None
    ) -> bool:
        """Block until the thread's (or all the user's) memories are written; False on timeout."""

        def busy() -> bool:
            keys = set(self._pending) | self._running
            return any(u == user_id and thread_id in (None, t) for u, t in keys)

        deadline = None if timeout is None else time.monotonic() + timeout
        # jobs adopted from dead writers are pending from the moment this writer starts:
        # the first sweep queues them, so wait for it before asking what is pending
        if not self._swept.wait(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        with self._cond:
            for key in list(self._due):  # read-your-writes: no need to sit out the debounce
                if key[0] == user_id and thread_id in (None, key[1]) and key not in self._retry:
                    self._due[key] = min(self._due[key], time.monotonic())
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: not busy(), left):
                return False
        while self.share_status and self._busy_elsewhere(user_id, thread_id):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(STATUS_POLL_S)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Write everything pending (dead writers' jobs found at start too), then stop."""
        self._swept.wait(timeout)
        with self._cond:
            for key in self._due:
                self._due[key] = time.monotonic()
            self._cond.notify_all()
            drained = self._cond.wait_for(lambda: not self._pending and not self._running, timeout)
            self._closed = True
            self._cond.notify_all()
        self._beating.set()
        if self._journal is not None and drained:  # nothing left: none of it is ours any more
            self._guarded(self._journal.beat, closed=True)

    # --- the worker -----------------------------------------------------------------------

    def discard_user(self, user_id: str) -> None:
        """Forget what the writer holds about a user (statuses with fact texts, job ids);
        pending jobs are written first (call after the user's last turn)."""
        self.wait(user_id)
        with self._publishing, self._cond:
            for key in [k for k in self._status if k[0] == user_id]:
                del self._status[key]
            for ident in [i for i in self._seen if i[0] == user_id]:
                del self._seen[ident]
        if self.share_status or self._journal is not None:
            forget_extraction(self.store, user_id)

    def _drop_forgotten(self, user_id: str) -> float:
        """Drop this writer's statuses of the user from before a forget-me served by any
        process (:func:`forgotten_at`); when that was (0: never)."""
        if not self.share_status:
            return 0.0  # one process: discard_user already cleared them
        at = forgotten_at(self.store, user_id)
        with self._cond:
            for key, status in list(self._status.items()):
                if key[0] == user_id and status.updated_at < at:
                    if status.state in ("pending", "running"):  # its worker still owns it
                        status.outcomes = []
                    else:
                        del self._status[key]
        return at

    # --- the status shared with other processes -------------------------------------------

    def _record(self, thread_id: str, status: ThreadStatus) -> dict[str, Any]:
        """A status as stored: the error's type only (its message can quote the user)."""
        return {
            "thread_id": thread_id,
            "writer": self.writer_id,
            "state": status.state,
            "error": status.error.split(":", 1)[0] if status.error else None,
            "attempts": status.attempts,
            "done_messages": status.done_messages,
            "outcomes": [dataclasses.asdict(o) for o in status.outcomes],
            "updated_at": status.updated_at,
            "alive_until": time.time() + STATUS_LEASE_S,
        }

    def _record_key(self, thread_id: str) -> str:
        digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.writer_id}.{digest}"

    def _publish(self, *keys: tuple[str, str]) -> None:
        """Write the statuses of ``keys`` to the store (a failure is logged: the
        extraction goes on, other processes see the status at the next write)."""
        if not self.share_status:
            return
        with self._publishing:  # snapshot and write in one step: the newest lands last
            for user_id in {user for user, _ in keys}:
                self._drop_forgotten(user_id)
            for user_id, thread_id in keys:
                with self._cond:
                    status = self._status.get((user_id, thread_id))
                    record = None if status is None else self._record(thread_id, status)
                if record is None:
                    continue
                ttl = STATUS_TTL_MIN if getattr(self.store, "supports_ttl", False) else None
                try:
                    self.store.put(
                        status_namespace(user_id),
                        self._record_key(thread_id),
                        record,
                        index=False,
                        ttl=ttl,
                    )
                except Exception as exc:
                    log.warning("Could not share an extraction status: %s", type(exc).__name__)
        self._start_beat()

    def _start_beat(self) -> None:
        with self._cond:
            if self._beat is None or not self._beat.is_alive():
                self._beat = threading.Thread(
                    target=self._heartbeat, name="memshelf-writer-beat", daemon=True
                )
                self._beat.start()

    def _heartbeat(self) -> None:
        """Refresh the busy threads' records and this writer's lease, so other processes
        know this one lives; take over dead writers' jobs, first at once, then each beat."""
        try:
            self._adopt()
        finally:
            self._swept.set()
        while not self._beating.wait(STATUS_LEASE_S / 3):
            with self._cond:
                busy = [k for k, st in self._status.items() if st.state in ("pending", "running")]
            self._publish(*busy)
            if self._journal is not None:
                self._guarded(self._journal.beat)
            self._adopt()

    # --- the journal: jobs that outlive a killed process ------------------------------------

    def _guarded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A journal write that fails is logged: the job still runs in this process, it
        is only not durable (None tells the caller so)."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            log.warning("Could not keep the extraction journal: %s", type(exc).__name__)
            return None

    def _adopt(self) -> None:
        """Run the jobs of writers that died, each claimed so only one writer runs it."""
        journal = self._journal
        if journal is None or self._closed:
            return
        for namespace, key, owner in self._guarded(journal.stranded) or []:
            if self._closed:
                return
            value = self._guarded(journal.take, namespace, key, owner)
            if value is not None:
                log.info("Taking over an extraction job of a writer that stopped")
                self._enqueue(ExtractionJob(**job_fields(value)), now=True)

    def _finish(self, jobs: list[ExtractionJob]) -> None:
        if self._journal is not None:
            self._guarded(self._journal.finish, jobs)

    def _shared(self, user_id: str, thread_id: str | None) -> list[dict[str, Any]]:
        """The stored status records of the user's thread (or all their threads)."""
        namespace = status_namespace(user_id)
        where = None if thread_id is None else {"thread_id": thread_id}
        try:
            found = self.store.search(namespace, filter=where, limit=1000)
        except Exception as exc:  # a read for status: answer with this process's own
            log.warning("Could not read shared extraction statuses: %s", type(exc).__name__)
            return []
        return [dict(i.value) for i in found]

    def _busy_elsewhere(self, user_id: str, thread_id: str | None) -> bool:
        now = time.time()
        records = self._shared(user_id, thread_id)
        return any(r.get("writer") != self.writer_id and _busy(r, now) for r in records)

    def _next(self) -> tuple[tuple[str, str], list[ExtractionJob]] | None:
        """Wait for a thread whose debounce has passed; None once closed and drained.

        A batch that failed is retried alone (``_retry``): messages that arrived since
        wait for the next batch instead of failing with it."""
        with self._cond:
            while True:
                now = time.monotonic()
                ready = [k for k, due in self._due.items() if due <= now and k not in self._running]
                if ready:
                    key = min(ready, key=lambda k: self._due[k])
                    pending = self._pending[key]
                    size = self._retry.get(key, MAX_BATCH)
                    batch, rest = pending[:size], pending[size:]
                    if rest:
                        self._pending[key] = rest
                        self._due[key] = now
                    else:
                        del self._pending[key], self._due[key]
                    self._running.add(key)
                    self._status[key].state = "running"
                    self._status[key].updated_at = time.time()
                    return key, batch
                if self._closed and not self._pending:
                    return None
                waits = [due - now for k, due in self._due.items() if k not in self._running]
                self._cond.wait(min(waits) if waits else None)

    def _run(self) -> None:
        try:
            while (task := self._next()) is not None:  # "running" is shared by the heartbeat
                key, jobs = task
                try:
                    outcomes = remember(self.store, self.model, jobs, kind_ttl=self.kind_ttl)
                except Exception as exc:  # a failed extraction must never take the agent down
                    self._failed(key, jobs, exc)
                except BaseException as exc:  # the thread itself is going: say so, then go
                    with self._cond:
                        status = self._status[key]
                        status.state, status.error = "failed", type(exc).__name__
                        status.updated_at = time.time()
                    self._publish(key)
                    raise
                else:
                    self._finish(jobs)  # a kill before this runs the jobs again: NOOPs
                    with self._cond:
                        status = self._status[key]
                        # op and key only: a fact's text stays in the store, where
                        # forget-me deletes it, never in a status another process keeps
                        status.outcomes = [dataclasses.replace(o, text="") for o in outcomes]
                        status.done_messages += len(jobs)
                        status.state = "pending" if key in self._pending else "done"
                        status.error, status.attempts = None, 0
                        status.updated_at = time.time()
                        self._retry.pop(key, None)
                    self._publish(key)
                finally:
                    with self._cond:
                        self._running.discard(key)
                        self._cond.notify_all()
        finally:  # whatever ends this thread, the next submit starts a new one
            with self._cond:
                self._worker = None
                if self._pending and not self._closed:
                    self._start_worker()
                self._cond.notify_all()

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="memshelf-writer", daemon=True)
        self._worker.start()

    def _failed(self, key: tuple[str, str], jobs: list[ExtractionJob], exc: Exception) -> None:
        """Retry the batch alone with backoff; after the last try drop only its jobs (they
        may be submitted again). Logs name the error type only: a model's error message
        can quote the user's words."""
        try:
            if self._fail(key, jobs, exc):
                self._finish(jobs)
        finally:
            self._publish(key)

    def _fail(self, key: tuple[str, str], jobs: list[ExtractionJob], exc: Exception) -> bool:
        """Count the failure; True when the jobs failed for good."""
        with self._cond:
            status = self._status[key]
            status.attempts += 1
            status.error = f"{type(exc).__name__}: {exc}"
            status.updated_at = time.time()
            if status.attempts < self.retries and not self._closed:
                self._pending[key] = jobs + self._pending.get(key, [])
                self._retry[key] = len(jobs)
                self._due[key] = time.monotonic() + self.backoff_s * 2 ** (status.attempts - 1)
                status.state = "pending"
                log.warning(
                    "Memory extraction failed (attempt %d), retrying: %s",
                    status.attempts,
                    type(exc).__name__,
                )
                return False
            status.state = "pending" if key in self._pending else "failed"
            status.attempts = 0
            self._retry.pop(key, None)
            for job in jobs:
                self._seen.pop((job.user_id, job.thread_id, job.message_id), None)
            log.error("Memory extraction failed for good: %s", type(exc).__name__)
            return True
