"""The Redis bookkeeping of the extraction queue (:mod:`memshelf.memory.queue`): key
layout, ids, the submit script, statuses and the end of a batch, shared by the writer
that queues jobs and the worker that runs them.

Keys, all under the store's prefix ``P`` (``MEMSHELF_REDIS_PREFIX``). Users, threads and
messages appear only as hashes, in key names and in the task arguments pydocket stores;
the user's and thread's own ids, with the text, are only in ``P:extract:msg`` until the
message is extracted::

    P:jobs:*              pydocket's stream, schedule and run records (hashes only)
    P:extract:job:<j>     STRING "done": one extracted message's de-duplication marker
    P:extract:msg:<t>     HASH   the thread's unfinished messages (ids, text, previous reply)
    P:extract:ids         HASH   every unfinished job's "<t> <u>" (to queue its task again)
    P:extract:ot:<t>      ZSET   the thread's unfinished jobs, in the order queued
    P:extract:ou:<u>      ZSET   the user's unfinished jobs (``wait(user)``)
    P:extract:open        ZSET   every unfinished job, by when it was queued (``backlog``)
    P:extract:running     SET    the jobs being extracted now
    P:extract:st:<t>      HASH   the thread's status: run (while a batch runs), state of
                                 the last batch, error, attempts, outcomes, done, and a
                                 failed batch awaiting its retry (batch, retry_at)
    P:extract:threads:<u> SET    the user's thread hashes (``discard_user``)
    P:extract:seq         STRING the counter that orders jobs
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memshelf.memory.consolidate import Outcome
from memshelf.memory.writer import ExtractionJob, ThreadStatus

if TYPE_CHECKING:
    import redis

MARKER_TTL_S = 7 * 24 * 3600  # how long a message id is remembered as seen
STATUS_TTL_S = 7 * 24 * 3600  # how long a quiet thread's status is kept


def _hash(*parts: str) -> str:
    """A fixed-length id for parts that may hold any character (the NUL keeps it injective)."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


class _Keys:
    """The key layout of the module docstring."""

    def __init__(self, prefix: str) -> None:
        self.docket = f"{prefix}:jobs"
        self.root = f"{prefix}:extract"
        self.open = f"{self.root}:open"
        self.running = f"{self.root}:running"
        self.seq = f"{self.root}:seq"
        self.ids = f"{self.root}:ids"

    def job(self, job_id: str) -> str:
        return f"{self.root}:job:{job_id}"

    def user_open(self, user: str) -> str:
        return f"{self.root}:ou:{user}"

    def thread_open(self, thread: str) -> str:
        return f"{self.root}:ot:{thread}"

    def messages(self, thread: str) -> str:
        return f"{self.root}:msg:{thread}"

    def status(self, thread: str) -> str:
        return f"{self.root}:st:{thread}"

    def threads(self, user: str) -> str:
        return f"{self.root}:threads:{user}"


@dataclasses.dataclass(frozen=True)
class _Ids:
    job: str
    thread: str
    user: str

    @classmethod
    def of(cls, user_id: str, thread_id: str, message_id: str = "") -> _Ids:
        return cls(
            job=_hash(user_id, thread_id, message_id),
            thread=_hash(user_id, thread_id),
            user=_hash(user_id),
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# submit's bookkeeping in one step. KEYS: marker, open, seq, messages, user open, thread
# open, user's threads, ids; ARGV: job, thread, user, message, now, status TTL.
# Returns 0 for a message already extracted (its marker says "done"), 2 for one already
# open (its task may be missing: queue it again), 1 for a new one.
_RECORD = """
if redis.call('GET', KEYS[1]) == 'done' then return 0 end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 2 end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], seq, ARGV[1])
redis.call('ZADD', KEYS[6], seq, ARGV[1])
redis.call('HSET', KEYS[8], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
redis.call('SADD', KEYS[7], ARGV[2])
redis.call('EXPIRE', KEYS[7], ARGV[6])
return 1
"""


def _task(ids: _Ids) -> dict[str, str]:
    """A job's task arguments: hashes only (pydocket keeps them pickled in Redis)."""
    return {"job": ids.job, "thread": ids.thread, "user": ids.user}


def _status(fields: Mapping[bytes, bytes], open_jobs: int) -> ThreadStatus:
    """A thread's status from its hash: running beats pending beats the last result."""
    text = {_text(k): _text(v) for k, v in fields.items()}
    outcomes = [Outcome(**o) for o in json.loads(text.get("outcomes", "[]"))]
    status = ThreadStatus(
        error=text.get("error") or None,
        attempts=int(text.get("attempts", 0)),
        outcomes=outcomes,
        done_messages=int(text.get("done", 0)),
    )
    if "run" in text:
        status.state = "running"
    elif open_jobs:
        status.state = "pending"
    elif text.get("state") == "done":
        status.state = "done"
    elif text.get("state") == "failed":
        status.state = "failed"
    return status


def _finish(
    r: redis.Redis,
    k: _Keys,
    thread: _Ids,
    jobs: list[str],
    status: Mapping[str, str | int] | None,
    *,
    done: bool,
) -> None:
    """End a batch of one thread's jobs in one transaction: off every open set, the
    message text deleted, the markers "done" (or deleted, so a failed message may be
    submitted again), and the thread's status written (``None``: a job that was never
    queued, and the status is left alone). A worker dying half-way through leaves the
    batch either open or finished, never both."""
    with r.pipeline(transaction=True) as p:
        for job in jobs:
            if done:
                p.set(k.job(job), "done", ex=MARKER_TTL_S)
            else:
                p.delete(k.job(job))
        p.zrem(k.open, *jobs)
        p.hdel(k.ids, *jobs)
        p.srem(k.running, *jobs)
        p.zrem(k.user_open(thread.user), *jobs)
        p.zrem(k.thread_open(thread.thread), *jobs)
        p.hdel(k.messages(thread.thread), *jobs)
        if status is not None:
            p.hdel(k.status(thread.thread), "run", "batch", "retry_at")
            if done:
                p.hincrby(k.status(thread.thread), "done", len(jobs))
            for field, value in status.items():
                p.hset(k.status(thread.thread), field, value)
            p.expire(k.status(thread.thread), STATUS_TTL_S)
        p.execute()


def _job(data: Mapping[str, Any]) -> ExtractionJob:
    return ExtractionJob(
        user_id=data["user_id"],
        thread_id=data["thread_id"],
        message_id=data["message_id"],
        text=data["text"],
        previous=data["previous"],
        at=datetime.fromisoformat(data["at"]),
    )
