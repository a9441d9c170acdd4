"""The in-process writer's jobs, kept in the store so a killed process loses none.

:class:`~memshelf.memory.writer.BackgroundWriter` holds its queue in memory; a SIGKILL
(or an OOM kill) would drop the messages it had yet to extract. So every job it
accepts is also written to the store, and deleted once extracted (or failed for good):

    ("extraction-jobs", <user>, "jobs")    one record per message, keyed by a hash of
                                           (user, thread, message id) like the Redis
                                           queue's, naming the writer that owns it
    ("extraction-jobs", <user>, "claims")  short-lived: a writer taking over a job
    ("extraction-writers",)                one lease per writer: alive until, pid, host

No user route reaches these namespaces; forgetting a user deletes theirs. A writer
refreshes its lease while it lives and ends it on close. On start and then every
few seconds a writer adopts the jobs whose owner is gone: lease ended or expired, or
(on the same host) its process no longer exists, so a restart picks a killed
process's jobs up at once instead of after the lease.

Taking a job over must happen once even when two writers start together, and a store
has no compare-and-set. So a writer first writes a claim, then reads the claims of
the job: if another live writer claims it too, it withdraws (and tries again after a
random pause); otherwise it checks that the job still names the dead owner it saw,
writes itself in as the owner, and drops its claim. If both writers proceeded, each
must have read the claims before the other wrote its own, which is impossible since
each writes before it reads. A job whose facts were stored before the kill but whose
record was not yet deleted runs again; consolidation settles the repeated facts as
duplicates (NOOP), so the shelf keeps one copy. A job taken over :data:`MAX_TAKEOVERS`
times whose writer died again is dropped (logged): it may be what kills them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

from langgraph.store.base import BaseStore

from memshelf.namespaces import encode_label

log = logging.getLogger(__name__)
JOBS_ROOT = "extraction-jobs"
WRITERS_ROOT = "extraction-writers"
LEASE_S = 30.0  # a writer's lease not refreshed for this long is a dead process's
MAX_TAKEOVERS = 3  # a job whose writer died this often is dropped (a message that kills)
CLAIM_TRIES = 3  # a claim that met another writer's is tried again this often
CLAIM_PAUSE_S = 0.2  # at most this long (random) between those tries
RECORD_TTL_MIN = 7 * 24 * 60.0  # leases and claims are dropped after a week (stores with TTL)
PAGE = 500
HOST = socket.gethostname()


def job_key(user_id: str, thread_id: str, message_id: str) -> str:
    """The job's id: the Redis queue's hash of (user, thread, message id)."""
    joined = "\0".join((user_id, thread_id, message_id)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:32]


def jobs_namespace(user_id: str) -> tuple[str, str, str]:
    return (JOBS_ROOT, encode_label(user_id), "jobs")


def _claims_namespace(label: str) -> tuple[str, str, str]:
    return (JOBS_ROOT, label, "claims")


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _process_gone(pid: object, started: object) -> bool:
    """Whether the process that wrote a lease on this host has ended."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        pass
    now = _started(pid)
    return started is not None and now is not None and now != started


def forget_jobs(store: BaseStore, user_id: str) -> int:
    """Delete the user's job records and claims (they quote the user's messages)."""
    removed = 0
    while found := store.search((JOBS_ROOT, encode_label(user_id)), limit=PAGE):
        for item in found:
            store.delete(item.namespace, item.key)
        removed += len(found)
    return removed


def _ttl(store: BaseStore) -> float | None:
    return RECORD_TTL_MIN if getattr(store, "supports_ttl", False) else None


class JobJournal:
    """One writer's side of the journal: record, finish, keep alive, adopt."""

    def __init__(self, store: BaseStore, writer_id: str) -> None:
        self.store, self.writer_id = store, writer_id
        self._pid, self._started = os.getpid(), _started(os.getpid())

    # --- this writer's own jobs ------------------------------------------------------------

    def beat(self, *, closed: bool = False) -> None:
        """Write this writer's lease (``closed``: it ended, its jobs are free at once)."""
        lease = {
            "alive_until": 0.0 if closed else time.time() + LEASE_S,
            "closed": closed,
            "pid": self._pid,
            "started": self._started,
            "host": HOST,
        }
        self.store.put((WRITERS_ROOT,), self.writer_id, lease, index=False, ttl=_ttl(self.store))

    def record(self, job: Any) -> bool:
        """Write the job as this writer's; False if a live writer already has it."""
        namespace = jobs_namespace(job.user_id)
        key = job_key(job.user_id, job.thread_id, job.message_id)
        held = self.store.get(namespace, key)
        if held is not None:
            owner = str(held.value.get("owner", ""))
            if owner == self.writer_id:
                return True
            if self.alive(owner, {}):
                return False
            return self.take(namespace, key, owner) is not None
        value = {
            **asdict(job),
            "at": job.at.isoformat(),
            "kind": "job",
            "owner": self.writer_id,
            "queued_at": time.time(),
        }
        self.store.put(namespace, key, value, index=False, ttl=None)
        return True

    def finish(self, jobs: list[Any]) -> None:
        """Delete the jobs' records: extracted, or failed for good."""
        for job in jobs:
            key = job_key(job.user_id, job.thread_id, job.message_id)
            self.store.delete(jobs_namespace(job.user_id), key)

    # --- other writers' jobs ---------------------------------------------------------------

    def alive(self, writer_id: str, seen: dict[str, bool]) -> bool:
        """Whether the writer still works (``seen`` caches answers within one sweep)."""
        if writer_id == self.writer_id:
            return True
        if writer_id in seen:
            return seen[writer_id]
        item = self.store.get((WRITERS_ROOT,), writer_id) if writer_id else None
        lease = {} if item is None else item.value
        until = lease.get("alive_until")
        live = isinstance(until, (int, float)) and until > time.time() and not lease.get("closed")
        if live and lease.get("host") == HOST:
            live = not _process_gone(lease.get("pid"), lease.get("started"))
        seen[writer_id] = live
        return live

    def stranded(self) -> list[tuple[tuple[str, ...], str, str]]:
        """(namespace, key, owner) of every job whose owner is gone."""
        seen: dict[str, bool] = {}
        found: list[tuple[tuple[str, ...], str, str]] = []
        offset = 0
        while page := self.store.search(
            (JOBS_ROOT,), filter={"kind": "job"}, limit=PAGE, offset=offset
        ):
            for item in page:
                owner = str(item.value.get("owner", ""))
                if not self.alive(owner, seen):
                    found.append((item.namespace, item.key, owner))
            offset += len(page)
        return found

    def take(self, namespace: tuple[str, ...], key: str, owner: str) -> dict[str, Any] | None:
        """Claim a dead owner's job (see the module docstring); its value if won."""
        claims = _claims_namespace(namespace[1])
        mine = f"{key}.{self.writer_id}"
        for attempt in range(CLAIM_TRIES):
            if attempt:
                time.sleep(random.uniform(0, CLAIM_PAUSE_S))
            claim = {"kind": "claim", "job": key, "writer": self.writer_id}
            self.store.put(claims, mine, claim, index=False, ttl=_ttl(self.store))
            try:
                rivals = self.store.search(claims, filter={"job": key}, limit=100)
                contested = any(
                    r.value.get("writer") != self.writer_id
                    and self.alive(str(r.value.get("writer", "")), {})
                    for r in rivals
                )
                if contested:
                    continue
                held = self.store.get(namespace, key)
                if held is None or held.value.get("owner") != owner:
                    return None  # finished, or taken over by another writer
                value = {**held.value, "owner": self.writer_id}
                value["adopted"] = int(value.get("adopted", 0)) + 1
                if value["adopted"] > MAX_TAKEOVERS:  # it may be what kills its writers
                    self.store.delete(namespace, key)
                    log.error(
                        "Dropped an extraction job whose writers stopped %d times",
                        1 + MAX_TAKEOVERS,
                    )
                    return None
                self.store.put(namespace, key, value, index=False, ttl=None)
                return value
            finally:
                self.store.delete(claims, mine)
        return None


def job_fields(value: dict[str, Any]) -> dict[str, Any]:
    """The ExtractionJob fields of a stored job record."""
    return {
        "user_id": value["user_id"],
        "thread_id": value["thread_id"],
        "message_id": value["message_id"],
        "text": value["text"],
        "previous": value.get("previous"),
        "at": datetime.fromisoformat(value["at"]),
    }
