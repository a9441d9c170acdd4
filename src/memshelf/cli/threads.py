"""``memshelf threads``: a user's conversations. Another user's thread is never shown."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.cli._common import StoreUrl, UserId, build_settings, check_store_file
from memshelf.config import Settings

app = typer.Typer(help="List, show and delete a user's conversation threads.", no_args_is_help=True)
ThreadName = Annotated[str, typer.Argument(help="The thread's name, as given to --thread.")]


def _settings(store: str | None) -> Settings:
    """Settings for a command on existing threads: a --store file that does not exist is
    an error (threads live beside a store; a new empty one would hide the mistake)."""
    settings = build_settings(store)
    check_store_file(settings, reads_only=True)
    return settings


@app.command("list")
def list_cmd(user: UserId, store: StoreUrl = None) -> None:
    """The user's threads, most recently active first."""
    from memshelf.ops.threads import list_threads, open_threads

    with open_threads(_settings(store)) as (opened, _):
        for info in list_threads(opened, user):
            typer.echo(f"{info.thread_id}\tupdated {info.updated_at}\tcreated {info.created_at}")


@app.command("show")
def show_cmd(user: UserId, thread: ThreadName, store: StoreUrl = None) -> None:
    """The messages of one of the user's threads."""
    from memshelf.ops.threads import open_threads, thread_messages

    with open_threads(_settings(store)) as (_, checkpointer):
        for message in thread_messages(checkpointer, user, thread):
            if message.type in ("human", "ai") and message.text:
                typer.echo(f"{'you' if message.type == 'human' else 'bot'}> {message.text}")


@app.command("delete")
def delete_cmd(user: UserId, thread: ThreadName, store: StoreUrl = None) -> None:
    """Delete one of the user's threads (its whole history)."""
    from memshelf.ops.threads import delete_thread, open_threads

    with open_threads(_settings(store)) as (_, checkpointer):
        delete_thread(checkpointer, user, thread)
    typer.echo(f"deleted thread {thread!r}")


@app.command("migrate")
def migrate_cmd(
    store: StoreUrl = None,
    delete_shared: Annotated[
        bool,
        typer.Option(
            "--delete-shared",
            help="Delete old threads that several users (or no user) wrote to.",
        ),
    ] = False,
) -> None:
    """Once after upgrading: give every thread from before per-user threads to the one
    user who wrote it; threads several users wrote to stay unreadable (or are deleted)."""
    from memshelf.ops.threads import open_threads

    with open_threads(_settings(store)) as (_, checkpointer):
        adopted, unassigned, deleted = checkpointer.migrate_legacy(delete_shared=delete_shared)
    typer.echo(f"adopted by their one writer: {adopted}; deleted: {deleted}")
    if unassigned:
        typer.echo(
            f"{unassigned} old thread(s) were written by several users (or none) and belong "
            "to nobody; nobody can read them. Delete them with "
            "`memshelf threads migrate --delete-shared`."
        )


def forget_user(
    user: UserId,
    store: StoreUrl = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget everything about a user: memories, their history, and their threads."""
    from memshelf.ops.forget import forget_everything
    from memshelf.ops.threads import open_threads

    if not yes and not typer.confirm(f"Delete every memory and thread of {user!r}?"):
        raise typer.Exit(1)
    with open_threads(_settings(store)) as (opened, checkpointer):
        report = forget_everything(opened, checkpointer, user)
    typer.echo(
        f"forgot {user!r}: {report.memories_and_history} memories, history events and "
        f"thread entries; {report.threads} threads"
    )
