"""A team's findings, for every surface: list, show, search, propose, verify, reject, forget.

Each function takes the store and the authenticated ``team_id`` and derives every
namespace from it: another team's finding behaves exactly like one that does not exist.
Who acts (``by``) is stamped by the edge that authenticated them (``cli:<user>``,
``api:<key>``), never taken from the request body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore

from memshelf.errors import InvalidInputError
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
from memshelf.team.sources import Sources
from memshelf.team.verify import Verdict, verify_finding

__all__ = [
    "STATUSES",
    "FindingView",
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
    a person cannot mark a claim verified without the evidence passing."""
    return verify_finding(store, team_id, key, sources, model, by=by)


def reject(store: BaseStore, team_id: str, key: str, *, by: str, why: str) -> FindingView:
    """Reject a finding by hand, with a reason; it leaves recall and stays in history."""
    if not why.strip():
        raise InvalidInputError("Say why the finding is rejected (--why '...').")
    decide(store, team_id, key, "rejected", by=by, why=why.strip(), ttl_days=DEFAULT_TTL_DAYS)
    return FindingView.of(get_finding(store, team_id, key))


def forget(store: BaseStore, team_id: str, key: str) -> None:
    """Remove a finding and every event of its history."""
    forget_finding(store, team_id, key)
