"""The findings of the logged-in key's teams, read-only: status, claim, evidence (source
and quote), who proposed and who decided, when and why.

The team in the URL is looked up among the key's own teams; any other team shows the
same not-found page as a team that does not exist. Changing a finding stays with the
API, the CLI and the team's verifier (verification re-reads the source).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from memshelf.errors import NotFoundError
from memshelf.ops import findings as ops
from memshelf.ui.render import render, segment
from memshelf.ui.session import Session, base_path, needs, services

router = APIRouter()

Status = Literal["proposed", "verified", "rejected", "superseded"]
PAGE = 200


def _link(source: str) -> str | None:
    """The evidence source as a link only when it is a web address (never javascript:)."""
    return source if source.startswith(("https://", "http://")) else None


@router.get("/findings")
def teams_page(request: Request, viewer: Session) -> Response:
    """The key's teams; with one team, straight to its findings."""
    needs(viewer, "findings:read")
    if len(viewer.teams) == 1:
        target = f"{base_path(request)}/findings/{segment(viewer.teams[0])}"
        return RedirectResponse(target, status_code=303)
    return render(request, "findings.html", viewer, team=None, rows=[], status=None)


@router.get("/findings/{team}")
def findings_page(
    request: Request,
    viewer: Session,
    team: str,
    status: Annotated[Status | None, Query()] = None,
) -> Response:
    """One team's findings, newest first (``status`` narrows to one status)."""
    needs(viewer, "findings:read")
    if team not in viewer.teams:
        raise NotFoundError("No such team.")
    found = ops.list_team_findings(services(request).store, team, status)
    rows = [{"f": f, "link": _link(str(f.evidence.get("source", "")))} for f in found[:PAGE]]
    return render(
        request,
        "findings.html",
        viewer,
        team=team,
        rows=rows,
        status=status,
        statuses=ops.STATUSES,
        more=max(0, len(found) - PAGE),
    )
