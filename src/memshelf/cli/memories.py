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
def list_cmd(
    user: UserId,
    store: StoreUrl = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include superseded memories.")] = False,
) -> None:
    """The user's current memories, newest first (--all: superseded ones too)."""
    from memshelf.memory import list_facts

    with _store(store) as opened:
        for item in list_facts(opened, user, include_superseded=all_):
            value = item.value
            line = f"{item.key}  [{value.get('kind', 'fact')}]  {value.get('text')}"
            if value.get("status") == "superseded":
                line += (
                    f"  (superseded by {value.get('superseded_by')} at {value.get('invalid_at')})"
                )
            typer.echo(line)


@app.command("history")
def history_cmd(
    user: UserId,
    key: Annotated[str, typer.Argument(help="The memory's key.")],
    store: StoreUrl = None,
) -> None:
    """Every change made to one memory: op, version, actor, source thread, text."""
    from memshelf.errors import NotFoundError
    from memshelf.memory import history

    with _store(store) as opened:
        events = history(opened, user, key)
    if not events:
        raise NotFoundError(f"User {user!r} has no memory {key!r} with a history.")
    for e in events:
        text = (e.get("after") or {}).get("text", "(deleted)")
        actor = str(e.get("actor")) + (f" {e['model']}" if e.get("model") else "")
        typer.echo(
            f"{e['at']}  v{e.get('version')}  {e['op']:<9} by {actor}"
            f"  thread {e.get('thread_id')}  {text}"
        )


@app.command("restore")
def restore_cmd(
    user: UserId,
    key: Annotated[str, typer.Argument(help="The memory's key.")],
    version: Annotated[int, typer.Argument(help="The version to make current again.")],
    store: StoreUrl = None,
) -> None:
    """Make an earlier version of a memory current again (recorded as a new version)."""
    from memshelf.memory import Provenance, restore_fact

    with _store(store) as opened:
        value = restore_fact(opened, user, key, version, Provenance(source="cli"))
    typer.echo(f"restored v{version} as v{value['version']}: {value['text']}")


@app.command("edit")
def edit_cmd(
    user: UserId,
    key: Annotated[str, typer.Argument(help="The memory's key.")],
    text: Annotated[str, typer.Argument(help="The new wording.")],
    store: StoreUrl = None,
) -> None:
    """Reword a memory by hand (the old wording stays in its history)."""
    from memshelf.memory import Provenance, edit_fact

    with _store(store) as opened:
        value = edit_fact(opened, user, key, text, Provenance(source="cli"))
    typer.echo(f"v{value['version']}: {value['text']}")


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
    user: UserId,
    what: Annotated[str, typer.Argument(help="A memory's key, or a description of it.")],
    store: StoreUrl = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be forgotten.")
    ] = False,
) -> None:
    """Delete a memory (by key, or the best match by meaning) and its near-duplicates."""
    from memshelf.memory import Provenance, forget

    with _store(store) as opened:
        gone = forget(opened, user, what, dry_run=dry_run, provenance=Provenance(source="cli"))
    if not gone:
        typer.echo("nothing matched")
        raise typer.Exit(1)
    for text in gone:
        typer.echo(f"{'would forget' if dry_run else 'forgot'}: {text}")


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
    from memshelf.errors import ConfigurationError
    from memshelf.memory import import_facts

    try:
        records = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"Cannot read {file} as an export ({exc}). Pass a file written by "
            "`memshelf memories export --user U --out FILE`."
        ) from exc
    with _store(store) as opened:
        typer.echo(f"imported {import_facts(opened, user, records)} facts")
