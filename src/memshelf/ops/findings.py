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

from memshelf.errors import InvalidInputError, MemshelfError
from memshelf.team.findings import (
    DEFAULT_TTL_DAYS,
    MAX_FAILED_READS,
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
from memshelf.team.sources import NOTE_PREFIX, Sources, local_origin
from memshelf.team.verify import Verdict, verify_finding

__all__ = [
    "STATUSES",
    "FindingView",
    "RejectedFindingError",
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
    """A finding's source could not be re-read now (refused, timeout, DNS, 5xx, 408, 429,
    a local address not allowed, no notes folder). The finding kept its status: an unread
    source says nothing about the claim. ``url`` and ``reason`` name what failed."""

    def __init__(self, url: str, reason: str, fix: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"could not re-read {url}: {reason.rstrip('.')}. {fix}")


class RejectedFindingError(MemshelfError):
    """A finding someone else rejected, verified again without ``force``: the check
    passing would silently undo a person's judgement, so it is refused and says whose."""

    def __init__(self, key: str, who: str, why: str, fix: str) -> None:
        self.key, self.who, self.why = key, who, why
        super().__init__(f"finding {key} was rejected by {who}: {why.rstrip('.')}. {fix}")


def _check_not_rejected(store: BaseStore, team_id: str, key: str, by: str, server: bool) -> None:
    """Refuse to verify a finding whose latest decision is a person's rejection, made by
    hand (`findings reject`, even by ``by`` themself). Rejections by a verification (the
    team's verifier, a failed re-read, anyone's `findings verify`) are re-checked."""
    decision = get_finding(store, team_id, key).value.get("decision") or {}
    who = str(decision.get("by") or "")
    if decision.get("status") != "rejected":
        return
    if not decision.get("by_hand"):
        return
    fix = "Pass ?force=true" if server else "Pass --force"
    raise RejectedFindingError(
        key, who, str(decision.get("why") or "no reason given"), f"{fix} to verify it again"
    )


def _kept(verdict: Verdict | None) -> str:
    """What happened to the finding, and how many failed reads remain before rejection."""
    if verdict is None or verdict.blocked or verdict.failed_reads == 0:
        return "The finding keeps its status."
    left = MAX_FAILED_READS - verdict.failed_reads
    return (
        f"The finding keeps its status for now: {verdict.failed_reads} of "
        f"{MAX_FAILED_READS} failed reads in a row; after {left} more it is rejected."
    )


def unreachable_fix(
    source: str, sources: Sources, *, server: bool = False, verdict: Verdict | None = None
) -> str:
    """How to make ``source`` readable again, for the error that says it was not.
    ``server``: the caller reached the service over HTTP, so the fix is the server's
    settings (it has no --notes or --allow-local-origin)."""
    kept = _kept(verdict)
    reject = "POST …/reject with a reason" if server else "`memshelf findings reject --why`"
    if source.startswith(NOTE_PREFIX):
        where = (
            "Set MEMSHELF_NOTES_DIR on the server to the team's notes folder"
            if server
            else "Point --notes (or MEMSHELF_NOTES_DIR) at the team's notes folder"
        )
        return f"{kept} {where}, or reject the finding ({reject}) if the note is gone."
    local = local_origin(source)
    if local is None:
        return (
            f"{kept} The source is unreachable: retry when it answers again, or reject the "
            f"finding ({reject}) if it is gone for good."
        )
    origin, loopback = local
    demo = f"`memshelf team serve-corpus --port {origin.rsplit(':', 1)[1]}`"
    if not (sources.settings.fetch_allow_private or origin in sources.allow_origins):
        if server:  # the service has no per-origin allow-list, only the private switch
            kind = "local" if loopback else "private"
            return (
                f"{kept} {origin} is a {kind} address, which the server's fetches may not "
                "reach: set MEMSHELF_FETCH_ALLOW_PRIVATE=true in the server's settings "
                "(and restart it) to let them reach local and private addresses."
            )
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
        f"demo's findings: {demo}), or reject the finding ({reject})."
    )


def verify(
    store: BaseStore,
    team_id: str,
    key: str,
    *,
    sources: Sources,
    model: BaseChatModel,
    by: str,
    server: bool = False,
    force: bool = False,
) -> Verdict:
    """Re-run verification on a finding (re-read its source, check the quote, judge):
    a person cannot mark a claim verified without the evidence passing. A source that
    cannot be read now raises :class:`SourceUnreachableError` and changes nothing but
    the count of failed reads (the third in a row rejects). A finding another person
    rejected raises :class:`RejectedFindingError` unless ``force``. ``server``: see
    :func:`unreachable_fix`."""
    if not force:
        _check_not_rejected(store, team_id, key, by, server)
    verdict = verify_finding(store, team_id, key, sources, model, by=by)
    if verdict.unreachable is not None:
        source = str(get_finding(store, team_id, key).value["evidence"]["source"])
        fix = unreachable_fix(source, sources, server=server, verdict=verdict)
        raise SourceUnreachableError(source, verdict.unreachable, fix)
    return verdict


def reject(store: BaseStore, team_id: str, key: str, *, by: str, why: str) -> FindingView:
    """Reject a finding by hand, with a reason; it leaves recall and stays in history."""
    if not why.strip():
        raise InvalidInputError("Say why the finding is rejected (--why '...').")
    decide(
        store,
        team_id,
        key,
        "rejected",
        by=by,
        why=why.strip(),
        ttl_days=DEFAULT_TTL_DAYS,
        by_hand=True,
    )
    return FindingView.of(get_finding(store, team_id, key))


def forget(store: BaseStore, team_id: str, key: str) -> None:
    """Remove a finding and every event of its history."""
    forget_finding(store, team_id, key)
