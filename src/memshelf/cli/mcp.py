"""``memshelf mcp``: the MCP server over stdio, for desktop clients (Claude Desktop,
Cursor, ...). The shelf is the ``--user`` given here, never a tool argument: whoever can
start this process owns its stdin. stdout carries the protocol only."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, UserId, build_settings

Team = Annotated[
    str | None,
    typer.Option(
        "--team", help="Also offer this team's findings (search_findings, propose_finding)."
    ),
]


def mcp(user: UserId, store: StoreUrl = None, team: Team = None) -> None:
    """Serve USER's memories as MCP tools over stdin/stdout (search, add, list, get,
    update, delete, forget with a preview, history; with --team, the team's findings)."""
    from memshelf.mcp import serve_stdio
    from memshelf.namespaces import encode_label, team_namespace
    from memshelf.stores import open_store

    encode_label(user)  # bad ids are refused before the client starts talking
    if team is not None:
        team_namespace(team, "findings")
    with open_store(settings=build_settings(store)) as opened:
        serve_stdio(opened, user, team=team)
