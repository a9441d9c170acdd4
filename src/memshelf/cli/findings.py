"""``memshelf findings``: look at and settle a team's findings.

Thin edges over :mod:`memshelf.ops.findings`; who acts is stamped here as
``cli:<login name>``, never typed by the caller."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, build_settings
from memshelf.cli.team import AllowOrigin, Notes, TeamId

app = typer.Typer(
    help="List, show, verify, reject and forget a team's findings.", no_args_is_help=True
)
Key = Annotated[str, typer.Argument(help="The finding's key (fd_…).")]


def _store(url: str | None) -> Any:
    from memshelf.stores import open_store

    return open_store(settings=build_settings(url))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("list")
def list_cmd(
    team: TeamId,
    status: Annotated[
        str | None, typer.Option("--status", help="proposed, verified, rejected or superseded.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    store: StoreUrl = None,
) -> None:
    """The team's findings, newest first."""
    from memshelf.ops.findings import list_team_findings

    with _store(store) as opened:
        views = list_team_findings(opened, team, status)
    if not views:  # on stderr: stdout stays empty for scripts, as `memories list` keeps it
        which = f"{status} findings" if status else "findings"
        typer.echo(f"No {which} for team {team}.", err=True)
    for v in views:
        if as_json:
            typer.echo(json.dumps(v.as_dict(), ensure_ascii=False))
        else:
            typer.echo(f"{v.key}  [{v.status}]  {v.claim}  <- {v.evidence.get('source')}")


@app.command("show")
def show_cmd(team: TeamId, key: Key, store: StoreUrl = None) -> None:
    """One finding: claim, evidence, author, decision, and every change to it."""
    from memshelf.ops.findings import show

    with _store(store) as opened:
        view, events = show(opened, team, key)
    typer.echo(json.dumps(view.as_dict(), ensure_ascii=False, indent=2))
    for e in events:
        why = e.get("why") or ((e.get("after") or {}).get("decision") or {}).get("why", "")
        typer.echo(f"{e['at']}  {e['op']:<9} by {e['by']}  {why}")


@app.command("verify")
def verify_cmd(
    team: TeamId,
    key: Key,
    notes: Notes = None,
    allow_local_origin: AllowOrigin = None,
    store: StoreUrl = None,
    model: ModelSpec = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Verify again a finding another person rejected."),
    ] = False,
) -> None:
    """Re-run verification: re-read the source, check the quote, judge the claim.

    Exit 0 verified, 1 rejected, 2 when the source could not be read (the finding keeps
    its status: an unreachable page says nothing about the claim; the third failed read
    in a row rejects it, exit 1) or another person rejected it (--force verifies anyway)."""
    from memshelf.llm import chat_model
    from memshelf.ops.findings import verify
    from memshelf.stores import open_store
    from memshelf.team.sources import Sources

    settings = build_settings(store, model)
    sources = Sources.create(
        settings, notes_dir=notes, allow_origins=tuple(allow_local_origin or ())
    )
    with open_store(settings=settings) as opened:
        verdict = verify(
            opened,
            team,
            key,
            sources=sources,
            model=chat_model(settings=settings),
            by=_actor(),
            force=force,
        )
    typer.echo(f"{'verified' if verdict.ok else 'rejected'}: {verdict.why}")
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("reject")
def reject_cmd(
    team: TeamId,
    key: Key,
    why: Annotated[str, typer.Option("--why", help="Why the finding is wrong.")],
    store: StoreUrl = None,
) -> None:
    """Reject a finding by hand; it leaves recall and stays in history."""
    from memshelf.ops.findings import reject

    with _store(store) as opened:
        view = reject(opened, team, key, by=_actor(), why=why)
    typer.echo(f"rejected: {view.claim}")


@app.command("forget")
def forget_cmd(team: TeamId, key: Key, store: StoreUrl = None) -> None:
    """Remove a finding and its history."""
    from memshelf.ops.findings import forget

    with _store(store) as opened:
        forget(opened, team, key)
    typer.echo(f"forgot {key}")
