"""``memshelf keys``: create, list and revoke the service's API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, UserId, build_settings
from memshelf.ops.keys import SCOPES, KeyRing

app = typer.Typer(help="API keys for `memshelf serve`.", no_args_is_help=True)


def _keyring(url: str | None):  # type: ignore[no-untyped-def]
    from memshelf.stores import open_store

    return open_store(settings=build_settings(url))


@app.command("create")
def create_cmd(
    user: UserId,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help=f"Repeat for several: {', '.join(SCOPES)}."),
    ] = None,
    team: Annotated[
        list[str] | None,
        typer.Option(
            "--team",
            "-t",
            help="A team the key belongs to (repeat for several): its findings are the only "
            "ones the key reaches. With no --scope, such a key also gets findings:read/write.",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    store: StoreUrl = None,
) -> None:
    """Create a key for a user and print its token (shown once; only its hash is kept)."""
    with _keyring(store) as opened:
        key, token = KeyRing(opened).create(user, scope or None, name, teams=team or ())
    typer.echo(token)
    teams = f", teams {', '.join(map(repr, key.teams))}" if key.teams else ""
    typer.echo(
        f"key {key.key_id} for user {key.user_id!r}, scopes {', '.join(key.scopes)}{teams}",
        err=True,
    )


@app.command("list")
def list_cmd(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's.")] = None,
    store: StoreUrl = None,
) -> None:
    """Every key (never its secret): id, user, scopes, created, revoked."""
    with _keyring(store) as opened:
        keys = KeyRing(opened).list(user)
    for k in keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        typer.echo(
            f"{k.key_id}  {k.user_id!r}  {','.join(k.scopes)}  {k.created_at}  {state}"
            + (f"  teams={','.join(k.teams)}" if k.teams else "")
            + (f"  {k.name}" if k.name else "")
        )


@app.command("revoke")
def revoke_cmd(
    key_id: Annotated[str, typer.Argument(help="The key id (`memshelf keys list`).")],
    store: StoreUrl = None,
) -> None:
    """Revoke a key; requests made with it fail from now on."""
    with _keyring(store) as opened:
        key = KeyRing(opened).revoke(key_id)
    typer.echo(f"revoked {key.key_id} (user {key.user_id!r})")
