"""Background extraction on Redis, through pydocket: jobs that several processes share.

With a ``redis://`` store the service hands each remembered message to a Redis-backed
job queue instead of its in-process :class:`~memshelf.memory.writer.BackgroundWriter`:

- :class:`RedisJobWriter` is the :class:`~memshelf.memory.writer.MemoryWriter` a service
  process uses. ``submit`` records the message (one atomic script that skips a message
  already open or done), then queues one pydocket task under a key derived from (user,
  thread, message id); pydocket adds a key already queued or running once, so a message
  submitted twice — by a replay, a retry or another process — runs once. A process
  killed between the two steps leaves an open message with no task: submitting it again
  queues the task, and so do ``wait`` and every worker (:func:`_repair`) once it is
  ``REPAIR_AFTER_S`` old. ``status`` and ``wait`` read the bookkeeping below, so they
  answer the same in every process.
- :class:`ExtractionWorker` runs the tasks: ``memshelf worker`` runs one as its main
  loop, ``memshelf serve`` one in a thread of each service process (unless
  ``MEMSHELF_EXTRACTION_WORKER=false``). A task extracts its thread's unfinished
  messages oldest first, in batches of up to ``MAX_BATCH`` (messages queued together
  are extracted together), with :func:`~memshelf.memory.writer.remember` on the
  worker's own store and model. A per-thread concurrency limit lets one task of a
  thread run at a time, in any process, so a thread's facts are consolidated in the
  order they were told. A failed batch is retried alone, with backoff, before anything
  queued after it; after ``ATTEMPTS`` tries its messages are dropped and the thread's
  status says "failed".

Queued jobs live in Redis, so they survive a restart of every process; pydocket hands a
task whose worker died to another worker after ``redelivery_timeout``. Stopping a worker
(SIGTERM, :meth:`ExtractionWorker.stop`) lets the tasks it runs finish and leaves the
queued ones to the next worker. A batch's end is written in one transaction, so a
worker killed mid-batch leaves it unfinished, and only then does it run again.

The Redis keys this bookkeeping uses, and the functions that read and write them, are
in :mod:`memshelf.memory._jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.errors import ConfigurationError, StoreError
from memshelf.memory._jobs import (
    _RECORD,
    STATUS_TTL_S,
    _finish,
    _Ids,
    _job,
    _Keys,
    _status,
    _task,
    _text,
)
from memshelf.memory.writer import MAX_BATCH, Backlog, ExtractionJob, ThreadStatus, remember

if TYPE_CHECKING:
    import redis
    from docket import Docket

    from memshelf.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TASK = "memshelf_extract"
ATTEMPTS = 3  # tries of one job before its thread shows "failed"
FIRST_RETRY = timedelta(seconds=1)  # then doubling, up to LAST_RETRY
LAST_RETRY = timedelta(seconds=30)
POLL_S = 0.05  # wait() polls Redis this often (the work happens in other processes)
REDELIVERY = timedelta(seconds=30)  # a silent worker's job goes to another after this
ENQUEUE_TIMEOUT_S = 30.0
REPAIR_AFTER_S = 10.0  # an open job this old with no live task gets its task queued again
REPAIR_EVERY_S = 1.0  # how often wait() looks for such jobs (a worker: SWEEP_EVERY_S)
SWEEP_EVERY_S = 30.0
_LIVE = ("scheduled", "queued", "running")  # pydocket states of a task still to run
NO_WORKER_S = 15.0  # an endless wait() gives up once no worker has been alive this long

_runner: contextvars.ContextVar[_Runner] = contextvars.ContextVar("memshelf_extraction_runner")


class ExtractionFailed(RuntimeError):
    """A job's extraction raised; only the error's type is carried (its message may quote
    the user, and pydocket logs the exception of every failed try)."""


def require_redis(settings: Settings) -> tuple[str, str | None]:
    """The Redis URL and password the queue uses; a clear error when the store is not Redis."""
    from memshelf.stores import is_redis_url

    url = settings.store_url
    if not url or not is_redis_url(url):
        raise ConfigurationError(
            "Background extraction on a job queue needs a Redis store: set MEMSHELF_STORE_URL "
            "(or --store) to a redis:// URL. With the embedded SQLite store, extraction runs "
            "inside each process and needs no worker."
        )
    secret = settings.redis_password
    return str(url), secret.get_secret_value() if secret else None


def _connect(url: str, password: str | None) -> redis.Redis:
    from memshelf.stores.redis import connect

    return connect(url, password)


def _open_docket(url: str, password: str | None, name: str) -> Docket:
    from docket import Docket
    from redis.credentials import UsernamePasswordCredentialProvider

    from memshelf.stores.redis import password_args

    provider = None
    if password_args(url, password):
        provider = UsernamePasswordCredentialProvider(password=password)
    # execution_ttl=0: a finished job's run record (which holds the message) is deleted.
    docket = Docket(name=name, url=url, execution_ttl=timedelta(0), credential_provider=provider)
    docket.register(memshelf_extract)
    return docket


class _Loop:
    """An event loop on a daemon thread, so sync callers can use pydocket's async API."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Awaitable[T], timeout: float | None = None) -> T:
        async def call() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class RedisJobWriter:
    """The :class:`~memshelf.memory.writer.MemoryWriter` over the Redis job queue.

    It never runs a job itself: an :class:`ExtractionWorker` (in this process or another)
    does. :meth:`close` stops accepting jobs; the queued ones stay in Redis for the
    workers (handed back), or, given a ``timeout``, are waited for first.
    """

    def __init__(self, url: str, *, prefix: str = "memshelf", password: str | None = None) -> None:
        self.keys = _Keys(prefix)
        self._r = _connect(url, password)
        self._users: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._loop = _Loop("memshelf-queue")
        self._record = self._r.register_script(_RECORD)
        try:
            self._docket = _open_docket(url, password, self.keys.docket)
            self._loop.run(self._docket.__aenter__(), ENQUEUE_TIMEOUT_S)
        except BaseException:
            self._loop.close()
            self._r.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisJobWriter:
        url, password = require_redis(settings)
        return cls(url, prefix=settings.redis_prefix, password=password)

    # --- the interface -----------------------------------------------------------------

    def submit(self, job: ExtractionJob) -> None:
        """Queue the job unless its (user, thread, message) was queued before."""
        with self._lock:
            if self._closed:
                raise RuntimeError("This memory writer is closed.")
            self._users.add(job.user_id)
        ids, k = _Ids.of(job.user_id, job.thread_id, job.message_id), self.keys
        fields = ("user_id", "thread_id", "message_id", "text", "previous")
        message = {**{f: getattr(job, f) for f in fields}, "at": job.at.isoformat()}
        # Record first, then queue: a crash in between leaves an open message that a
        # resubmit, wait() or a worker's sweep queues again (never a marker without a job).
        keys = [
            k.job(ids.job), k.open, k.seq, k.messages(ids.thread), k.user_open(ids.user),
            k.thread_open(ids.thread), k.threads(ids.user), k.ids,
        ]  # fmt: skip
        args: list[str | float] = [
            ids.job, ids.thread, ids.user, json.dumps(message), time.time(), STATUS_TTL_S,
        ]  # fmt: skip
        recorded = int(self._record(keys=keys, args=args))
        if recorded == 0:
            return  # a duplicate of a message already extracted
        try:
            self._loop.run(self._docket.add(TASK, key=ids.job)(**_task(ids)), ENQUEUE_TIMEOUT_S)
        except Exception as exc:
            if recorded == 1:  # not queued: undo the bookkeeping so a retry can queue it
                _finish(self._r, k, ids, [ids.job], None, done=False)
            raise StoreError(
                f"Could not queue the memory extraction on Redis ({type(exc).__name__}); "
                "check that Redis is reachable."
            ) from exc

    def status(self, user_id: str, thread_id: str) -> ThreadStatus:
        ids = _Ids.of(user_id, thread_id)
        with self._r.pipeline() as p:
            p.hgetall(self.keys.status(ids.thread))
            p.zcard(self.keys.thread_open(ids.thread))
            fields, open_jobs = p.execute()
        return _status(fields, open_jobs)

    def wait(
        self, user_id: str, thread_id: str | None = None, timeout: float | None = None
    ) -> bool:
        """Block until the thread's (or all the user's) queued jobs have finished, whichever
        process queued or runs them; False on timeout. Waiting without a timeout while no
        worker is alive would never end: after ``NO_WORKER_S`` it raises StoreError."""
        ids = _Ids.of(user_id, thread_id or "")
        k = self.keys
        key = k.user_open(ids.user) if thread_id is None else k.thread_open(ids.thread)
        deadline = None if timeout is None else time.monotonic() + timeout
        alone_since: float | None = None
        repaired_at = time.monotonic()
        while self._r.zcard(key):
            now = time.monotonic()
            if now - repaired_at >= REPAIR_EVERY_S:
                repaired_at = now
                jobs = [_text(j) for j in self._r.zrange(key, 0, 99)]
                self._loop.run(_repair(self._docket, self._r, k, jobs), ENQUEUE_TIMEOUT_S)
            if deadline is not None and now >= deadline:
                return False
            if deadline is None:
                if self.workers():
                    alone_since = None
                elif alone_since is None:
                    alone_since = now
                elif now - alone_since > NO_WORKER_S:
                    raise StoreError(
                        "Memories are queued for extraction but no extraction worker is "
                        "running: start `memshelf worker` with the same MEMSHELF_STORE_URL "
                        "and MEMSHELF_REDIS_PREFIX (or run `memshelf serve` with "
                        "MEMSHELF_EXTRACTION_WORKER=true)."
                    )
            time.sleep(POLL_S)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting jobs. With a ``timeout``, first wait up to that long for the jobs
        of the users this writer queued for; the rest stay queued for the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            users = list(self._users)
        if timeout is not None:
            deadline = time.monotonic() + timeout
            for user in users:
                self.wait(user, timeout=max(0.0, deadline - time.monotonic()))
        try:
            self._loop.run(self._docket.__aexit__(None, None, None), ENQUEUE_TIMEOUT_S)
        finally:
            self._loop.close()
            self._r.close()

    # --- beyond the interface ------------------------------------------------------------

    def backlog(self) -> Backlog:
        """The whole queue's jobs waiting and running (across processes), the age of the
        oldest unfinished one, and whether it is served: accepting, with a live worker
        whenever jobs wait."""
        with self._r.pipeline() as p:
            p.zcard(self.keys.open)
            p.scard(self.keys.running)
            p.zrange(self.keys.open, 0, 0, withscores=True)
            unfinished, running, oldest = p.execute()
        lag = max(0.0, time.time() - oldest[0][1]) if oldest else 0.0
        alive = not self._closed and (not unfinished or self.workers() > 0)
        return Backlog(
            queued=max(0, unfinished - running), running=running, oldest_s=lag, alive=alive
        )

    def workers(self) -> int:
        """Extraction workers alive (a heartbeat lately), in any process."""
        d = self._docket
        oldest = time.time() - d.heartbeat_interval.total_seconds() * d.missed_heartbeats
        return int(self._r.zcount(d.workers_set, oldest, "+inf"))

    def ping(self) -> bool:
        """Whether the queue's Redis answers (for readiness)."""
        return bool(self._r.ping())

    def discard_user(self, user_id: str) -> None:
        """Forget the user's statuses (they quote fact texts); waits for their jobs first."""
        self.wait(user_id)
        user = _Ids.of(user_id, "").user
        threads = [_text(t) for t in self._r.smembers(self.keys.threads(user))]
        self._r.delete(
            self.keys.threads(user),
            self.keys.user_open(user),
            *(self.keys.status(t) for t in threads),
        )


async def _repair(docket: Docket, r: redis.Redis, k: _Keys, jobs: list[str]) -> int:
    """Queue the task again of each open job older than ``REPAIR_AFTER_S`` that pydocket
    holds no live task for (its submit died between recording it and queueing it).
    pydocket adds a key already queued or running once, and a task whose job is no
    longer open does nothing, so a repair racing a submit or a worker is harmless."""
    if not jobs:
        return 0
    oldest = time.time() - REPAIR_AFTER_S
    with r.pipeline() as p:
        p.zmscore(k.open, jobs)
        p.hmget(k.ids, jobs)
        scores, owners = p.execute()
    repaired = 0
    for job, score, owner in zip(jobs, scores, owners, strict=True):
        if score is None or score > oldest or owner is None:
            continue
        execution = await docket.get_execution(job)
        if execution is not None and execution.state.value in _LIVE:
            continue
        thread, user = _text(owner).split(" ")
        await docket.add(TASK, key=job)(**_task(_Ids(job=job, thread=thread, user=user)))
        log.warning("Queued a memory extraction again whose submit did not finish.")
        repaired += 1
    return repaired


def _backoff(attempt: int) -> float:
    return float(min(FIRST_RETRY.total_seconds() * 2 ** (attempt - 1), LAST_RETRY.total_seconds()))


@dataclasses.dataclass
class _Runner:
    """What a worker's tasks run with: its store, model and Redis bookkeeping.

    A task holds its thread's concurrency slot while it runs :meth:`drain`, so one
    thread's jobs never run side by side, in any process."""

    store: BaseStore
    model: BaseChatModel
    r: redis.Redis
    keys: _Keys
    kind_ttl: Mapping[str, float | None] | None

    def drain(self, ids: _Ids) -> float:
        """Extract the thread's unfinished messages oldest first, in batches, until the
        job ``ids`` is finished (a task never ends while its own job is open, so no job
        is left without a task). A failed batch is retried alone (with backoff) before
        anything queued after it. Returns 0 once the job is finished, or how long to wait
        for a batch's backoff; raises :class:`ExtractionFailed` when a batch fails and
        will be retried."""
        k, thread = self.keys, ids
        while self.r.zscore(k.thread_open(thread.thread), ids.job) is not None:
            fields = {
                _text(f): _text(v) for f, v in self.r.hgetall(k.status(thread.thread)).items()
            }
            retrying = json.loads(fields["batch"]) if "batch" in fields else None
            if retrying is not None:
                wait = float(fields.get("retry_at", 0)) - time.time()
                if wait > 0:
                    return wait
            head = self.r.zrange(k.thread_open(thread.thread), 0, MAX_BATCH - 1)
            batch: list[str] = retrying or [_text(j) for j in head]
            if not batch:
                break
            raw = self.r.hmget(k.messages(thread.thread), batch)
            jobs = [_job(json.loads(_text(v))) for v in raw if v is not None]
            with self.r.pipeline() as p:
                p.hset(k.status(thread.thread), "run", len(batch))
                p.sadd(k.running, *batch)
                p.execute()
            try:
                outcomes = (
                    remember(self.store, self.model, jobs, kind_ttl=self.kind_ttl) if jobs else []
                )
            except Exception as exc:
                tries = int(fields.get("attempts", 0)) if retrying else 0
                self._failed(thread, batch, exc, tries + 1)
                continue
            done: dict[str, str | int] = {
                "state": "done",
                "error": "",
                "attempts": 0,
                "outcomes": json.dumps([dataclasses.asdict(o) for o in outcomes]),
            }
            _finish(self.r, k, thread, batch, done, done=True)
        return 0.0

    def _failed(self, thread: _Ids, batch: list[str], exc: Exception, attempt: int) -> None:
        """Record a failed try of ``batch``. Before the last try, keep it for a retry and
        raise (pydocket reschedules the task); after it, drop the batch's jobs (their
        messages may be submitted again) and go on. Logs name the error type only: its
        message may quote the user."""
        k, error = self.keys, f"{type(exc).__name__}: {exc}"
        if attempt >= ATTEMPTS:
            failed: dict[str, str | int] = {"state": "failed", "error": error, "attempts": attempt}
            _finish(self.r, k, thread, batch, failed, done=False)
            log.error("Memory extraction failed for good: %s", type(exc).__name__)
            return
        with self.r.pipeline(transaction=True) as p:
            p.hdel(k.status(thread.thread), "run")
            p.srem(k.running, *batch)
            p.hset(
                k.status(thread.thread),
                mapping={
                    "error": error,
                    "attempts": attempt,
                    "batch": json.dumps(batch),
                    "retry_at": time.time() + _backoff(attempt),
                },
            )
            p.execute()
        log.warning(
            "Memory extraction failed (attempt %d), retrying: %s", attempt, type(exc).__name__
        )
        raise ExtractionFailed(type(exc).__name__) from None


def _retry() -> Any:
    from docket import ExponentialRetry

    return ExponentialRetry.forever(delay=FIRST_RETRY, maximum_delay=LAST_RETRY)


def _per_thread() -> Any:
    from docket import ConcurrencyLimit

    return ConcurrencyLimit("thread", max_concurrent=1)


async def memshelf_extract(
    job: str,
    thread: str,
    user: str,
    retry: Any = _retry(),  # noqa: B008 (pydocket reads its dependencies from the defaults)
    per_thread: Any = _per_thread(),  # noqa: B008
) -> None:
    """The pydocket task queued for each message: extract its thread's unfinished
    messages, oldest first, up to and including this one. Its arguments are the job's,
    thread's and user's hashes (pydocket stores them); the ids and text are read from
    the thread's ``P:extract:msg`` hash.

    A batch takes every unfinished message of the thread (up to ``MAX_BATCH``), so later
    tasks often find their message done already; the per-thread limit lets one task of
    a thread run at a time.
    Retries are pydocket's: a failed batch raises, and the task comes back after a
    backoff (``ExponentialRetry``); the batch's own tries are counted in Redis, so it
    fails for good after ``ATTEMPTS`` whichever task made them.

    The extraction runs in a thread, which a cancellation cannot stop; so a cancelled
    task waits for it and records its end: a batch is never half-done nor run twice."""
    runner = _runner.get(None)
    if runner is None:
        raise RuntimeError("memshelf_extract runs only inside an ExtractionWorker.")
    ids = _Ids(job=job, thread=thread, user=user)
    while True:
        work = asyncio.ensure_future(asyncio.to_thread(runner.drain, ids))
        try:
            wait = await asyncio.shield(work)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await work
            raise
        if wait <= 0:
            return
        await asyncio.sleep(wait)  # another task's batch is in its backoff


class ExtractionWorker:
    """Runs the queue's extraction jobs with this process's store and model.

    :meth:`start`/:meth:`stop` run it on a thread (inside ``memshelf serve``);
    :meth:`run` runs it in the calling thread until SIGTERM or SIGINT (``memshelf
    worker``). Stopping is graceful: running jobs finish, queued ones stay queued.
    """

    def __init__(
        self,
        url: str,
        *,
        store: BaseStore,
        model: BaseChatModel,
        prefix: str = "memshelf",
        password: str | None = None,
        kind_ttl: Mapping[str, float | None] | None = None,
        concurrency: int = 2,
        redelivery_timeout: timedelta = REDELIVERY,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"Worker concurrency must be at least 1 (got {concurrency}).")
        self.url, self.password = url, password
        self.keys = _Keys(prefix)
        self.concurrency, self.redelivery_timeout = concurrency, redelivery_timeout
        self.name = f"{socket.gethostname()}#{os.getpid()}#{uuid.uuid4().hex[:6]}"
        self._runner = _Runner(store, model, _connect(url, password), self.keys, kind_ttl)
        self.ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, store: BaseStore, model: BaseChatModel, **options: Any
    ) -> ExtractionWorker:
        url, password = require_redis(settings)
        return cls(
            url,
            store=store,
            model=model,
            prefix=settings.redis_prefix,
            password=password,
            kind_ttl=settings.memory_kind_ttl_days,
            **{"concurrency": settings.extraction_concurrency, **options},
        )

    def _prepare(self) -> asyncio.Event:
        """The event that stops this worker, made before anything can ask for a stop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        return self._stopping

    async def _serve(
        self, stopping: asyncio.Event, on_ready: Callable[[], None] | None = None
    ) -> None:
        from docket import Worker

        _runner.set(self._runner)  # the tasks' context is copied from here
        async with (
            _open_docket(self.url, self.password, self.keys.docket) as docket,
            Worker(
                docket,
                name=self.name,
                concurrency=self.concurrency,
                redelivery_timeout=self.redelivery_timeout,
                schedule_automatic_tasks=False,
            ) as worker,
        ):
            running = asyncio.create_task(worker.run_forever())
            sweeping = asyncio.create_task(self._sweep(docket))
            self.ready.set()
            if on_ready is not None:
                on_ready()
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait([running, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            sweeping.cancel()
            if running.done():  # the worker loop gave up on its own: say why
                running.result()
            # Leaving the Worker block stops it taking jobs and waits for the running ones.
        await running

    async def _sweep(self, docket: Docket) -> None:
        """Every ``SWEEP_EVERY_S``, queue again the task of the oldest open jobs that have
        none (see :func:`_repair`), so a message whose submit died is extracted even when
        nobody submits or waits for it again."""
        r, k = self._runner.r, self.keys
        while True:
            try:
                limit = time.time() - REPAIR_AFTER_S
                old = await asyncio.to_thread(r.zrangebyscore, k.open, "-inf", limit, 0, 100)
                await _repair(docket, r, k, [_text(j) for j in old])
            except Exception as exc:
                log.warning("The sweep for stranded extraction jobs failed: %s", type(exc).__name__)
            await asyncio.sleep(SWEEP_EVERY_S)

    def _request_stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    def start(self) -> ExtractionWorker:
        """Run on a daemon thread; returns once it takes jobs."""

        async def serve() -> None:
            await self._serve(self._prepare())

        def main() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:
                self._error = exc
                log.error("The extraction worker stopped: %s", type(exc).__name__)
            finally:
                self.ready.set()

        self._thread = threading.Thread(target=main, name="memshelf-extraction", daemon=True)
        self._thread.start()
        self.ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs and let the running ones finish (up to ``timeout``)."""
        self._request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._runner.r.close()

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run in this thread until SIGTERM or SIGINT, then stop gracefully (a second
        signal is the default one: it interrupts at once)."""

        async def main() -> None:
            loop, stopping = asyncio.get_running_loop(), self._prepare()
            signals = (signal.SIGTERM, signal.SIGINT)

            def graceful() -> None:
                log.info("Stopping: running jobs finish, queued ones stay queued.")
                for sig in signals:
                    loop.remove_signal_handler(sig)
                self._request_stop()

            for sig in signals:
                loop.add_signal_handler(sig, graceful)
            await self._serve(stopping, on_ready)

        try:
            asyncio.run(main())
        finally:
            self._runner.r.close()


__all__ = [
    "ExtractionFailed",
    "ExtractionWorker",
    "RedisJobWriter",
    "memshelf_extract",
    "require_redis",
]
