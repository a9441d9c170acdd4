"""``/v1/teams/{team}/findings`` and ``/v1/teams/{team}/ask``: a team's findings and
team runs over HTTP, for keys that belong to the team.

Routes only translate: every operation is :mod:`memshelf.ops.findings`. The team in the
path is looked up among the key's own teams (:meth:`Principal.member_of`), so a team
the key does not belong to answers 404 exactly like one that does not exist. Who acted
is stamped ``api:<key id>`` by this edge, never taken from the body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memshelf.memory.types import now_iso
from memshelf.ops import findings as ops
from memshelf.service.auth import FindingsRead, FindingsWrite, Principal, Services
from memshelf.service.state import ServiceState
from memshelf.team.findings import Cause, Evidence
from memshelf.team.sources import Sources

router = APIRouter(prefix="/v1/teams/{team}", tags=["findings"])

Status = Literal["proposed", "verified", "rejected", "superseded"]
MAX_PAGE = 200


class FindingOut(BaseModel):
    key: str
    claim: str
    status: str
    author: str
    evidence: dict[str, Any]
    decision: dict[str, Any] | None = None
    cause: dict[str, Any]
    superseded_by: str | None = None
    created_at: str | None = None
    updated_at: str
    score: float | None = None


class FindingPage(BaseModel):
    findings: list[FindingOut]
    total: int = Field(description="How many findings match (all pages).")
    next_offset: int | None = Field(description="The offset of the next page, if any.")


class FindingDetail(BaseModel):
    finding: FindingOut
    history: list[dict[str, Any]] = Field(description="Every change: op, before/after, by, at.")


class Proposal(BaseModel):
    claim: str = Field(min_length=1, max_length=300, description="One self-contained sentence.")
    source: str = Field(min_length=1, max_length=2000, description="A URL or note:<path>.")
    quote: str = Field(min_length=1, max_length=600, description="The span that states it.")


class Rejection(BaseModel):
    why: str = Field(min_length=1, max_length=1000, description="Why the claim is rejected.")


class Question(BaseModel):
    question: str = Field(min_length=1, max_length=20_000, description="For the team.")
    thread_id: str = Field(
        default="default", min_length=1, max_length=256, description="Your conversation id."
    )


class TeamAnswer(BaseModel):
    answer: str
    findings: list[dict[str, Any]] = Field(description="Findings used; `new` if found now.")
    tool_calls: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    seconds: float
    tokens: int


class VerdictOut(BaseModel):
    ok: bool
    why: str
    finding: FindingOut


def _by(principal: Principal) -> str:
    return f"api:{principal.key_id}"


def _team_graph(services: ServiceState) -> Any:
    """The team graph on the service's store and thread memory, built once per process."""
    graph = services.extras.get("team_graph")
    if graph is None:
        from memshelf.team.graph import build_team
        from memshelf.team.nodes import Limits

        sources, model = _verifier(services)
        limits = Limits(max_message_chars=services.settings.max_message_chars)
        graph = services.extras["team_graph"] = build_team(
            store=services.store,
            model=model,
            sources=sources,
            checkpointer=services.checkpointer,
            limits=limits,
        )
    return graph


def _verifier(services: ServiceState) -> tuple[Sources, BaseChatModel]:
    """The readers and model verification uses, built once per service process."""
    found = services.extras.get("findings_verifier")
    if found is None:
        from memshelf.agent.graph import memory_writer
        from memshelf.llm import chat_model

        model = getattr(memory_writer(services.graph), "model", None)
        if not isinstance(model, BaseChatModel):
            model = chat_model(settings=services.settings)
        found = services.extras["findings_verifier"] = (Sources.create(services.settings), model)
    sources, model = found
    return sources, model


@router.get("/findings", response_model=FindingPage)
async def list_findings(
    team: str,
    services: Services,
    principal: FindingsRead,
    status: Status | None = None,
    q: Annotated[str | None, Query(max_length=4000, description="Search by meaning.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The team's findings, newest first, one page at a time; with ``q``, the verified
    ones (or those of ``status``) by meaning."""
    team_id = principal.member_of(team)
    if q:
        found = await run_in_threadpool(
            ops.search,
            services.store,
            team_id,
            q,
            status=status or "verified",
            limit=offset + limit,
        )
    else:
        found = await run_in_threadpool(ops.list_team_findings, services.store, team_id, status)
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    return {
        "findings": [v.as_dict() for v in page],
        "total": len(found),
        "next_offset": offset + limit if more else None,
    }


@router.post("/findings", response_model=FindingOut, status_code=201)
async def propose_finding(
    team: str, body: Proposal, services: Services, principal: FindingsWrite
) -> dict[str, Any]:
    """Propose a finding; it is shared with the team's recall only once verified."""
    team_id = principal.member_of(team)
    evidence = Evidence(source=body.source, quote=body.quote, sha256="", fetched_at=now_iso())

    def propose() -> dict[str, Any]:
        key = ops.propose_finding(
            services.store,
            team_id,
            body.claim,
            evidence,
            by=_by(principal),
            cause=Cause(user_id=principal.user_id),
        )
        return ops.show(services.store, team_id, key)[0].as_dict()

    return await run_in_threadpool(propose)


@router.get("/findings/{finding_id}", response_model=FindingDetail)
async def show_finding(
    team: str, finding_id: str, services: Services, principal: FindingsRead
) -> dict[str, Any]:
    """One finding with its evidence, decision and history."""
    team_id = principal.member_of(team)
    view, history = await run_in_threadpool(ops.show, services.store, team_id, finding_id)
    return {"finding": view.as_dict(), "history": history}


@router.post(
    "/findings/{finding_id}/verify",
    response_model=VerdictOut,
    responses={
        502: {"description": "The source could not be re-read now; the finding is unchanged."},
        409: {"description": "Another person rejected the finding; ?force=true verifies it."},
    },
)
async def verify_finding(
    team: str,
    finding_id: str,
    services: Services,
    principal: FindingsWrite,
    force: Annotated[
        bool, Query(description="Verify again a finding another person rejected.")
    ] = False,
) -> dict[str, Any]:
    """Re-run verification: re-read the source, check the quote, judge; verified or
    rejected with the reason (nobody can mark a claim verified by fiat). A source that
    cannot be read now (refused, timeout, DNS, 5xx) answers 502 and changes nothing; the
    third such answer in a row rejects the finding (200, ok false). A finding another
    person rejected answers 409 unless ``?force=true``: a passing check must not
    silently undo their judgement."""
    team_id = principal.member_of(team)

    def verify() -> dict[str, Any]:
        ops.show(services.store, team_id, finding_id)  # not found before any fetch
        sources, model = _verifier(services)
        verdict = ops.verify(
            services.store,
            team_id,
            finding_id,
            sources=sources,
            model=model,
            by=_by(principal),
            server=True,
            force=force,
        )
        view = ops.show(services.store, team_id, finding_id)[0]
        return {"ok": verdict.ok, "why": verdict.why, "finding": view.as_dict()}

    try:
        return await run_in_threadpool(verify)
    except ops.SourceUnreachableError as exc:  # the source failed, not the claim: 502
        raise HTTPException(502, str(exc)) from exc
    except ops.RejectedFindingError as exc:  # a person's rejection stands unless forced
        raise HTTPException(409, str(exc)) from exc


@router.post("/findings/{finding_id}/reject", response_model=FindingOut)
async def reject_finding(
    team: str, finding_id: str, body: Rejection, services: Services, principal: FindingsWrite
) -> dict[str, Any]:
    """Reject a finding with a reason; it leaves recall and stays in history."""
    team_id = principal.member_of(team)
    view = await run_in_threadpool(
        lambda: ops.reject(services.store, team_id, finding_id, by=_by(principal), why=body.why)
    )
    return view.as_dict()


@router.delete("/findings/{finding_id}", status_code=204)
async def forget_finding(
    team: str, finding_id: str, services: Services, principal: FindingsWrite
) -> None:
    """Remove a finding and every event of its history."""
    team_id = principal.member_of(team)
    await run_in_threadpool(ops.forget, services.store, team_id, finding_id)


@router.post("/ask", response_model=TeamAnswer)
async def ask_team(
    team: str, body: Question, services: Services, principal: FindingsWrite
) -> dict[str, Any]:
    """One question for the team (supervisor, researcher, verifier, writer), answered from
    verified findings or researched now; runs in a worker thread, in the caller's own
    thread ``thread_id`` of this team. Needs ``chat`` too: it runs the model."""
    from memshelf.team.graph import run_team

    team_id = principal.member_of(team)
    if "chat" not in principal.scopes and "admin" not in principal.scopes:
        raise HTTPException(403, "This key lacks the 'chat' scope a team run needs.")

    def ask() -> dict[str, Any]:
        result = run_team(
            _team_graph(services),
            team_id,
            principal.user_id,
            body.thread_id,
            body.question,
            max_chars=services.settings.max_message_chars,
        )
        return {
            "answer": result.answer,
            "findings": result.findings,
            "tool_calls": result.tool_calls,
            "steps": result.steps,
            "seconds": result.seconds,
            "tokens": result.tokens,
        }

    return await run_in_threadpool(ask)
