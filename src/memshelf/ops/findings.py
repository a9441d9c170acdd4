"""A team's findings, for every surface: list, show, search, propose, verify, reject, forget.

Each function takes the store and the authenticated ``team_id`` and derives every
namespace from it: another team's finding behaves exactly like one that does not exist.
Who acts (``by``) is stamped by the edge that authenticated them (``cli:<user>``,
``api:<key>``), never taken from the request body.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.errors import InvalidInputError, MemshelfError
from memshelf.team.findings import (
    DEFAULT_TTL_DAYS,
    STATUSES,
    Cause,
    Evidence,
    decide,
    finding_history,
    forget_finding,
    get_finding,
    list_findings,
    propose,
    search_findings,
)
from memshelf.team.sources import NOTE_PREFIX, Sources
from memshelf.team.verify import Verdict, verify_finding

__all__ = [
    "STATUSES",
    "FindingView",
    "SourceUnreachableError",
    "forget",
    "list_team_findings",
    "propose_finding",
    "reject",
    "search",
    "show",
    "verify",
]


@dataclass(frozen=True)
class FindingView:
    """A finding as surfaces show it (the store's value, plus its key and times)."""

    key: str
    claim: str
    status: str
    author: str
    evidence: dict[str, Any]
    decision: dict[str, Any] | None
    cause: dict[str, Any]
    superseded_by: str | None
    created_at: str | None
    updated_at: str
    score: float | None = None

    @classmethod
    def of(cls, item: Any) -> FindingView:
        v = item.value
        return cls(
            key=item.key,
            claim=str(v.get("text", "")),
            status=str(v.get("status", "")),
            author=str(v.get("author", "")),
            evidence=dict(v.get("evidence") or {}),
            decision=v.get("decision"),
            cause=dict(v.get("cause") or {}),
            superseded_by=v.get("superseded_by"),
            created_at=v.get("created_at"),
            updated_at=item.updated_at.isoformat(timespec="seconds"),
            score=getattr(item, "score", None),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_team_findings(
    store: BaseStore, team_id: str, status: str | None = None
) -> list[FindingView]:
    """The team's findings, newest first (``status`` narrows to one status)."""
    items = list_findings(store, team_id, status)
    items.sort(key=lambda i: i.updated_at, reverse=True)
    return [FindingView.of(i) for i in items]


def show(store: BaseStore, team_id: str, key: str) -> tuple[FindingView, list[dict[str, Any]]]:
    """One finding and its history (every change, who made it, when, why)."""
    return FindingView.of(get_finding(store, team_id, key)), finding_history(store, team_id, key)


def search(
    store: BaseStore, team_id: str, query: str, *, status: str | None = "verified", limit: int = 5
) -> list[FindingView]:
    """Findings by meaning; verified ones only unless ``status`` says otherwise (None = all)."""
    if not query.strip():
        raise InvalidInputError("Give a search query, e.g. 'how long do worker bees live'.")
    return [
        FindingView.of(h)
        for h in search_findings(store, team_id, query, status=status, limit=limit)
    ]


def propose_finding(
    store: BaseStore,
    team_id: str,
    claim: str,
    evidence: Evidence,
    *,
    by: str,
    cause: Cause | None = None,
) -> str:
    """A person's (or client's) proposed finding; it is shared only once verified."""
    return propose(store, team_id, claim, evidence, author=by, cause=cause or Cause())


class SourceUnreachableError(MemshelfError):
    """A finding's source could not be re-read now (refused, timeout, DNS, 5xx, a local
    address not allowed). The finding kept its status: an unread source says nothing
    about the claim. ``url`` and ``reason`` name what failed."""

    def __init__(self, url: str, reason: str, fix: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"could not re-read {url}: {reason.rstrip('.')}. {fix}")


def _local_host(url: str) -> tuple[str, bool] | None:
    """``(scheme://host:port, loopback IP?)`` of a URL on this machine or a private
    network, else None (a public host, or not a URL)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return f"{parsed.scheme}://{host}:{port}", False
        return None
    if address.is_global:
        return None
    return f"{parsed.scheme}://{host}:{port}", address.is_loopback


def unreachable_fix(source: str, sources: Sources) -> str:
    """How to make ``source`` readable again, for the error that says it was not."""
    kept = "The finding keeps its status."
    if source.startswith(NOTE_PREFIX):
        return (
            f"{kept} Point --notes (or MEMSHELF_NOTES_DIR) at the team's notes folder, or "
            "reject the finding with --why if the note is gone for good."
        )
    local = _local_host(source)
    if local is None:
        return (
            f"{kept} The source is unreachable: retry when it answers again, or reject the "
            "finding with --why if it is gone for good."
        )
    origin, loopback = local
    demo = f"`memshelf team serve-corpus --port {origin.rsplit(':', 1)[1]}`"
    if not (sources.settings.fetch_allow_private or origin in sources.allow_origins):
        if not loopback:  # --allow-local-origin takes loopback IP origins only
            return (
                f"{kept} {origin} is a private address: set MEMSHELF_FETCH_ALLOW_PRIVATE=true "
                "to let fetches reach private addresses."
            )
        return (
            f"{kept} {origin} is a local address: pass --allow-local-origin {origin} to "
            f"reach exactly it (for the team demo's findings, with {demo} running)."
        )
    return (
        f"{kept} The local server {origin} is unreachable: start it again (for the team "
        f"demo's findings: {demo}), or reject the finding with --why."
    )


def verify(
    store: BaseStore,
    team_id: str,
    key: str,
    *,
    sources: Sources,
    model: BaseChatModel,
    by: str,
) -> Verdict:
    """Re-run verification on a finding (re-read its source, check the quote, judge):
    a person cannot mark a claim verified without the evidence passing. A source that
    cannot be read now raises :class:`SourceUnreachableError` and changes nothing."""
    verdict = verify_finding(store, team_id, key, sources, model, by=by)
    if verdict.unreachable is not None:
        source = str(get_finding(store, team_id, key).value["evidence"]["source"])
        raise SourceUnreachableError(source, verdict.unreachable, unreachable_fix(source, sources))
    return verdict


def reject(store: BaseStore, team_id: str, key: str, *, by: str, why: str) -> FindingView:
    """Reject a finding by hand, with a reason; it leaves recall and stays in history."""
    if not why.strip():
        raise InvalidInputError("Say why the finding is rejected (--why '...').")
    decide(store, team_id, key, "rejected", by=by, why=why.strip(), ttl_days=DEFAULT_TTL_DAYS)
    return FindingView.of(get_finding(store, team_id, key))


def forget(store: BaseStore, team_id: str, key: str) -> None:
    """Remove a finding and every event of its history."""
    forget_finding(store, team_id, key)
