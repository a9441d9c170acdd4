"""``memshelf memories``: look at and edit what is stored about a user.

Each command is a thin edge over :mod:`memshelf.ops.memories`, the same functions the
service's ``/v1/memories`` routes call."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import (
    StoreUrl,
    UserId,
    build_settings,
    check_store_file,
    write_output,
)

app = typer.Typer(
    help="List, search, add, forget, export and import a user's memories.", no_args_is_help=True
)


def _store(url: str | None, *, reads_only: bool = True):  # type: ignore[no-untyped-def]
    """The store a command works on; a command that only reads refuses a store file that
    does not exist (it would open an empty one and print nothing)."""
    from memshelf.stores import open_store

    settings = build_settings(url)
    check_store_file(settings, reads_only=reads_only)
    return open_store(settings=settings)


@app.command("list")
def list_cmd(
    user: UserId,
    store: StoreUrl = None,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include superseded memories.")] = False,
) -> None:
    """The user's current memories, newest first (--all: superseded ones too)."""
    from memshelf.ops.memories import list_memories

    with _store(store) as opened:
        for item in list_memories(opened, user, status="all" if all_ else "current").items:
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
    from memshelf.ops.memories import memory_history

    with _store(store) as opened:
        events = memory_history(opened, user, key)
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
    from memshelf.ops.memories import restore_memory

    with _store(store) as opened:
        value = restore_memory(opened, user, key, version, source="cli").value
    typer.echo(f"restored v{version} as v{value['version']}: {value['text']}")


@app.command("edit")
def edit_cmd(
    user: UserId,
    key: Annotated[str, typer.Argument(help="The memory's key.")],
    text: Annotated[str, typer.Argument(help="The new wording.")],
    store: StoreUrl = None,
) -> None:
    """Reword a memory by hand (the old wording stays in its history)."""
    from memshelf.ops.memories import edit_memory

    with _store(store) as opened:
        value = edit_memory(opened, user, key, text, source="cli").value
    typer.echo(f"v{value['version']}: {value['text']}")


@app.command("search")
def search_cmd(
    user: UserId,
    query: Annotated[str, typer.Argument()],
    store: StoreUrl = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 5,
) -> None:
    """Facts by meaning and keyword, with scores."""
    from memshelf.ops.memories import search_memories

    with _store(store) as opened:
        for fact in search_memories(opened, user, query, k=limit):
            score = f"{fact.score:.3f}" if fact.score is not None else "-"
            typer.echo(f"{score}  {fact.key}  {fact.text}")


@app.command("add")
def add_cmd(user: UserId, fact: Annotated[str, typer.Argument()], store: StoreUrl = None) -> None:
    """Store one fact by hand."""
    from memshelf.ops.memories import add_memory

    with _store(store, reads_only=False) as opened:
        typer.echo(add_memory(opened, user, fact, source="cli").key)


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
    from memshelf.ops.memories import forget_memories

    with _store(store) as opened:
        gone = forget_memories(opened, user, what, dry_run=dry_run, source="cli")
    if not gone:
        typer.echo("nothing matched")
        raise typer.Exit(1)
    for memory in gone:
        typer.echo(f"{'would forget' if dry_run else 'forgot'}: {memory.text}")


@app.command("export")
def export_cmd(
    user: UserId,
    store: StoreUrl = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default stdout).")] = None,
) -> None:
    """Write the user's shelf as JSON."""
    from memshelf.ops.memories import export_memories

    with _store(store) as opened:
        data = json.dumps(export_memories(opened, user), indent=2, ensure_ascii=False)
    if out:
        write_output(out, data + "\n")
    else:
        sys.stdout.write(data + "\n")


@app.command("import")
def import_cmd(
    user: UserId,
    file: Annotated[Path, typer.Argument(help="JSON from `memories export`.")],
    store: StoreUrl = None,
) -> None:
    """Load facts exported earlier onto the user's shelf (all or nothing: a bad record is
    named and nothing is written)."""
    from memshelf.errors import ConfigurationError
    from memshelf.ops.memories import import_memories

    try:
        records = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"Cannot read {file} as an export ({exc}). Pass a file written by "
            "`memshelf memories export --user U --out FILE`."
        ) from exc
    with _store(store, reads_only=False) as opened:
        typer.echo(f"imported {import_memories(opened, user, records)} facts")
