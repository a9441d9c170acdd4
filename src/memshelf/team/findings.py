"""Findings: a team's shared claims, each with its evidence, author and verification status.

A finding lives in ``("team", <team>, "findings")``; every change to it is an event in
``("team", <team>, "history")`` (so is a verification that could not re-read the
source, ``verify-failed``, which changes nothing but counts: after
``MAX_FAILED_READS`` in a row the finding is rejected). Its author and every status change
are stamped by the code that made them (the worker's name, never words from a model).
Status goes ``proposed → verified | rejected`` once per verification, with who, when
and why; a verified finding that a newer one contradicts becomes ``superseded`` and
stays in history. Verified findings expire unless read (refresh on read); only they
are recalled as facts, so a proposed claim never reaches a prompt.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.store.base import BaseStore, Item, SearchItem

from memshelf.errors import InvalidInputError, NotFoundError
from memshelf.memory.guard import MAX_FACT_CHARS
from memshelf.memory.shelf import all_items
from memshelf.memory.types import now_iso
from memshelf.namespaces import TEAM, team_namespace

Status = Literal["proposed", "verified", "rejected", "superseded"]
PROPOSED: Status = "proposed"
VERIFIED: Status = "verified"
REJECTED: Status = "rejected"
SUPERSEDED: Status = "superseded"
STATUSES: tuple[str, ...] = (PROPOSED, VERIFIED, REJECTED, SUPERSEDED)
DEFAULT_TTL_DAYS = 30.0  # a verified finding nobody reads for this long falls away
MINUTES_PER_DAY = 24 * 60
MAX_QUOTE_CHARS = 600


def findings_namespace(team_id: str) -> tuple[str, ...]:
    """``("team", <team>, "findings")``: the team's shared claims."""
    return team_namespace(team_id, "findings")


def team_history_namespace(team_id: str) -> tuple[str, ...]:
    """``("team", <team>, "history")``: every change made to the team's findings."""
    return team_namespace(team_id, "history")


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Evidence:
    """Where a claim comes from: a URL or ``note:<path>``, the quoted span, and the
    sha256 and time of the content it was quoted from."""

    source: str
    quote: str
    sha256: str
    fetched_at: str

    def as_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "quote": self.quote,
            "sha256": self.sha256,
            "fetched_at": self.fetched_at,
        }


@dataclass(frozen=True)
class Cause:
    """The user and thread whose question made a worker propose a finding."""

    user_id: str | None = None
    thread_id: str | None = None


def _check_text(claim: str, quote: str) -> tuple[str, str]:
    claim = " ".join(str(claim).split())
    quote = " ".join(str(quote).split())
    if not claim:
        raise InvalidInputError("A finding needs a claim: one self-contained sentence.")
    if len(claim) > MAX_FACT_CHARS:
        raise InvalidInputError(
            f"The claim is {len(claim)} characters; a finding is one sentence of at most "
            f"{MAX_FACT_CHARS}. Split it into several findings."
        )
    if len(quote) > MAX_QUOTE_CHARS:
        raise InvalidInputError(
            f"The quote is {len(quote)} characters; quote at most {MAX_QUOTE_CHARS} "
            "characters: the span that states the claim, not the whole page."
        )
    return claim, quote


def _ttl(ttl_days: float | None, store: BaseStore) -> float | None:
    if ttl_days is None or not store.supports_ttl:
        return None
    return ttl_days * MINUTES_PER_DAY


def _record(
    store: BaseStore,
    team_id: str,
    key: str,
    op: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    by: str,
    *,
    why: str | None = None,
    failed_reads: int | None = None,
) -> None:
    event: dict[str, Any] = {
        "finding_id": key,
        "op": op,
        "before": dict(before) if before else None,
        "after": dict(after) if after else None,
        "by": by,
        "at": now_iso(),
    }
    if why is not None:  # a change that is not a decision still says why it happened
        event["why"] = why
    if failed_reads is not None:
        event["failed_reads"] = failed_reads
    history_key = f"{key}~{time.time_ns():020d}"
    store.put(team_history_namespace(team_id), history_key, event, index=False, ttl=None)


def _write(
    store: BaseStore,
    team_id: str,
    key: str,
    value: dict[str, Any],
    ttl_days: float | None,
) -> None:
    store.put(findings_namespace(team_id), key, value, ttl=_ttl(ttl_days, store))


def propose(
    store: BaseStore,
    team_id: str,
    claim: str,
    evidence: Evidence,
    *,
    author: str,
    cause: Cause = Cause(),
    ttl_days: float | None = DEFAULT_TTL_DAYS,
) -> str:
    """Store a new proposed finding; returns its key. ``author`` is the worker that
    proposed it, passed by the calling code."""
    claim, quote = _check_text(claim, evidence.quote)
    key = "fd_" + uuid.uuid4().hex[:24]
    value: dict[str, Any] = {
        "text": claim,
        "evidence": {**evidence.as_dict(), "quote": quote},
        "author": author,
        "status": PROPOSED,
        "decision": None,
        "cause": {"user_id": cause.user_id, "thread_id": cause.thread_id},
        "created_at": now_iso(),
        "version": 1,
    }
    _write(store, team_id, key, value, ttl_days)
    _record(store, team_id, key, "propose", None, value, author)
    return key


def get_finding(store: BaseStore, team_id: str, key: str) -> Item:
    """The finding ``key`` of this team; another team's key is simply not found."""
    item = store.get(findings_namespace(team_id), key)
    if item is None:
        raise NotFoundError(
            f"Team {team_id!r} has no finding {key!r}. List them with "
            f"`memshelf findings list --team {team_id}`."
        )
    return item


def decide(
    store: BaseStore,
    team_id: str,
    key: str,
    status: Literal["verified", "rejected"],
    *,
    by: str,
    why: str,
    evidence: Evidence | None = None,
    ttl_days: float | None = DEFAULT_TTL_DAYS,
    by_hand: bool = False,
) -> dict[str, Any]:
    """Settle a finding as verified or rejected, stamped with who, when and why.
    ``evidence`` replaces the stored one with what the verifier re-read; ``by_hand``
    marks a person's own judgement (a rejection a passing check must not undo)."""
    item = get_finding(store, team_id, key)
    before = dict(item.value)
    decision: dict[str, Any] = {"status": status, "by": by, "at": now_iso(), "why": why}
    if by_hand:
        decision["by_hand"] = True
    after: dict[str, Any] = {
        **before,
        "status": status,
        "decision": decision,
        "version": int(before.get("version", 1)) + 1,
    }
    if evidence is not None:
        after["evidence"] = evidence.as_dict()
    _write(store, team_id, key, after, ttl_days)
    _record(store, team_id, key, "verify" if status == VERIFIED else "reject", before, after, by)
    return after


MAX_FAILED_READS = 3  # failed reads in a row after which a finding is rejected


def failed_reads(store: BaseStore, team_id: str, key: str) -> int:
    """How many verifications in a row could not read the finding's source (0 once a
    read succeeded): the count the latest ``verify-failed`` event carries, if it is the
    latest event. Kept in history so counting never renews the finding's TTL."""
    events = finding_history(store, team_id, key)
    if not events or events[-1]["op"] != "verify-failed":
        return 0
    return int(events[-1].get("failed_reads", 1))


def record_attempt(
    store: BaseStore, team_id: str, key: str, *, by: str, why: str, counted: bool = True
) -> int:
    """Note in the finding's history that a verification could not re-read its source;
    returns the failed reads in a row now (``counted`` False: a failure of this reader's
    own settings, which leaves the count as it was).

    The finding itself is not touched: an unreachable source says nothing about the
    claim, so its status, evidence and TTL stay as they were (op ``verify-failed``)."""
    value = dict(get_finding(store, team_id, key).value)
    count = failed_reads(store, team_id, key) + (1 if counted else 0)
    _record(store, team_id, key, "verify-failed", value, value, by, why=why, failed_reads=count)
    return count


def supersede(
    store: BaseStore,
    team_id: str,
    old_key: str,
    new_key: str,
    *,
    by: str,
    ttl_days: float | None = DEFAULT_TTL_DAYS,
) -> None:
    """Retire ``old_key`` in favour of the newer verified ``new_key`` (both kept)."""
    old = get_finding(store, team_id, old_key)
    new = get_finding(store, team_id, new_key)
    before = dict(old.value)
    retired = {
        **before,
        "status": SUPERSEDED,
        "superseded_by": new_key,
        "invalid_at": now_iso(),
        "version": int(before.get("version", 1)) + 1,
    }
    _write(store, team_id, old_key, retired, ttl_days)
    _record(store, team_id, old_key, "supersede", before, retired, by)
    newer = {**new.value, "supersedes": [*new.value.get("supersedes", []), old_key]}
    _write(store, team_id, new_key, newer, ttl_days)


def search_findings(
    store: BaseStore,
    team_id: str,
    query: str | None = None,
    *,
    status: str | None = VERIFIED,
    limit: int = 5,
) -> list[SearchItem]:
    """The team's findings closest to ``query`` (verified only, unless asked).

    Reading a finding refreshes its TTL: a finding the team keeps using stays."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"Unknown status {status!r}; choose one of {', '.join(STATUSES)}.")
    return store.search(
        findings_namespace(team_id),
        query=query,
        filter={"status": status} if status else None,
        limit=limit,
    )


def list_findings(store: BaseStore, team_id: str, status: str | None = None) -> list[Item]:
    """Every finding of the team (optionally of one status)."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"Unknown status {status!r}; choose one of {', '.join(STATUSES)}.")
    return all_items(store, findings_namespace(team_id), {"status": status} if status else None)


def finding_history(store: BaseStore, team_id: str, key: str) -> list[dict[str, Any]]:
    """The events of finding ``key``, oldest first."""
    events = all_items(store, team_history_namespace(team_id), {"finding_id": key})
    return [e.value for e in sorted(events, key=lambda e: e.key)]


def forget_finding(store: BaseStore, team_id: str, key: str) -> None:
    """Remove a finding and its history: every copy."""
    get_finding(store, team_id, key)
    store.delete(findings_namespace(team_id), key)
    for event in all_items(store, team_history_namespace(team_id), {"finding_id": key}):
        store.delete(team_history_namespace(team_id), event.key)


FORGOTTEN_USER = "forgotten-user"  # what a forgotten user's ids become in team records
_SURFACES = ("mcp", "api", "ui")  # actors are stamped "<surface>:<user or key id>"


def _anonymised(value: Any, user_id: str, actors: frozenset[str]) -> Any:
    """``value`` with the user's ids replaced: a cause naming them loses its thread
    too; an ``author`` or ``by`` naming them (or one of their keys) becomes anonymous."""
    if isinstance(value, list):
        return [_anonymised(v, user_id, actors) for v in value]
    if not isinstance(value, dict):
        return value
    theirs = value.get("user_id") == user_id
    out: dict[str, Any] = {}
    for name, inner in value.items():
        if name == "user_id" and theirs:
            out[name] = FORGOTTEN_USER
        elif name == "thread_id" and theirs:
            out[name] = None
        elif name in ("author", "by") and inner in actors:
            out[name] = FORGOTTEN_USER
        else:
            out[name] = _anonymised(inner, user_id, actors)
    return out


def anonymise_contributor(store: BaseStore, user_id: str, *, key_ids: Iterable[str] = ()) -> int:
    """Replace ``user_id`` (and the actor names of their ``key_ids``) in every team's
    findings and history, keeping the findings themselves (they belong to the team);
    returns how many records changed. Forgetting a user calls it. Reads every team
    record once: forgetting a user is rare, and a missed copy would be a leak."""
    actors = frozenset(
        {user_id, *(f"{s}:{user_id}" for s in _SURFACES), *(f"api:{k}" for k in key_ids)}
    )
    changed = 0
    for namespace in store.list_namespaces(prefix=(TEAM,), limit=10**9):
        if len(namespace) != 3 or namespace[2] not in ("findings", "history"):
            continue
        for item in all_items(store, namespace):
            scrubbed = _anonymised(item.value, user_id, actors)
            if scrubbed == item.value:
                continue
            if namespace[2] == "findings":
                store.put(namespace, item.key, scrubbed, ttl=_ttl(DEFAULT_TTL_DAYS, store))
            else:
                store.put(namespace, item.key, scrubbed, index=False, ttl=None)
            changed += 1
    return changed
