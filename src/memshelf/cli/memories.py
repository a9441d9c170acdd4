"""``memshelf memories``: look at and edit what is stored about a user."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, UserId, build_settings

app = typer.Typer(
    help="List, search, add, forget, export and import a user's memories.", no_args_is_help=True
)


def _store(url: str | None):  # type: ignore[no-untyped-def]
    from memshelf.stores import open_store

    return open_store(settings=build_settings(url))


@app.command("list")
def list_cmd(user: UserId, store: StoreUrl = None) -> None:
    """Every fact on the user's shelf, newest first."""
    from memshelf.memory import list_facts

    with _store(store) as opened:
        for item in list_facts(opened, user):
            typer.echo(f"{item.key}  {item.value.get('text')}")


@app.command("search")
def search_cmd(
    user: UserId,
    query: Annotated[str, typer.Argument()],
    store: StoreUrl = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 5,
) -> None:
    """Facts by meaning and keyword, with scores."""
    from memshelf.memory import recall

    with _store(store) as opened:
        for fact in recall(opened, user, query, k=limit):
            score = f"{fact.score:.3f}" if fact.score is not None else "-"
            typer.echo(f"{score}  {fact.key}  {fact.text}")


@app.command("add")
def add_cmd(user: UserId, fact: Annotated[str, typer.Argument()], store: StoreUrl = None) -> None:
    """Store one fact by hand."""
    from memshelf.memory import Provenance, save_fact

    with _store(store) as opened:
        typer.echo(save_fact(opened, user, fact, Provenance(source="cli")))


@app.command("forget")
def forget_cmd(
    user: UserId, what: Annotated[str, typer.Argument()], store: StoreUrl = None
) -> None:
    """Delete a fact (by key, or the best match by meaning) and its near-duplicates."""
    from memshelf.memory import forget

    with _store(store) as opened:
        gone = forget(opened, user, what)
    if not gone:
        typer.echo("nothing matched")
        raise typer.Exit(1)
    for text in gone:
        typer.echo(f"forgot: {text}")


@app.command("export")
def export_cmd(
    user: UserId,
    store: StoreUrl = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default stdout).")] = None,
) -> None:
    """Write the user's shelf as JSON."""
    from memshelf.memory import export_facts

    with _store(store) as opened:
        data = json.dumps(export_facts(opened, user), indent=2, ensure_ascii=False)
    if out:
        out.write_text(data + "\n", encoding="utf-8")
    else:
        sys.stdout.write(data + "\n")


@app.command("import")
def import_cmd(
    user: UserId,
    file: Annotated[Path, typer.Argument(help="JSON from `memories export`.")],
    store: StoreUrl = None,
) -> None:
    """Load facts exported earlier onto the user's shelf."""
    from memshelf.memory import import_facts

    records = json.loads(file.read_text(encoding="utf-8"))
    with _store(store) as opened:
        typer.echo(f"imported {import_facts(opened, user, records)} facts")
