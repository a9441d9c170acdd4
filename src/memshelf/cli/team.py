"""``memshelf team``: ask the team (supervisor, researcher, verifier, writer) a question,
and ``memshelf team demo``, the offline acceptance run over the shipped corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, UserId, build_settings

app = typer.Typer(help="The research team and its shared, verified findings.", no_args_is_help=True)
TeamId = Annotated[str, typer.Option("--team", help="The team whose findings are shared.")]
AllowOrigin = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-local-origin",
        help="Let fetches reach this exact loopback origin (e.g. http://127.0.0.1:8765, a "
        "local corpus server). Off by default; every other private address stays refused.",
    ),
]
Notes = Annotated[
    Path | None,
    typer.Option("--notes", help="The team's notes folder (default MEMSHELF_NOTES_DIR)."),
]


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question for the team.")],
    team: TeamId,
    user: UserId = "cli",
    thread: Annotated[str, typer.Option("--thread", "-t", help="Conversation id.")] = "default",
    notes: Notes = None,
    allow_local_origin: AllowOrigin = None,
    store: StoreUrl = None,
    model: ModelSpec = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every step, tool call and finding.")
    ] = False,
) -> None:
    """One question: the team answers from verified findings, researching when it must."""
    from memshelf.team.demo import show_run
    from memshelf.team.graph import open_team, run_team

    settings = build_settings(store, model)

    def step(node: str, detail: dict[str, object]) -> None:
        typer.secho(f"  {node}: {detail}", fg=typer.colors.CYAN, err=True)

    with open_team(
        settings, notes_dir=notes, allow_origins=tuple(allow_local_origin or ())
    ) as graph:
        result = run_team(
            graph,
            team,
            user,
            thread,
            question,
            max_chars=settings.max_message_chars,
            on_step=step if verbose else None,
        )
    if verbose:
        show_run(lambda line: typer.secho(line, fg=typer.colors.CYAN, err=True), "run", result)
    typer.echo(result.answer)


@app.command("demo")
def demo(
    store: StoreUrl = None,
    model: ModelSpec = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every step.")] = False,
) -> None:
    """Run 1 researches, run 2 reuses its verified findings, run 3 meets a prompt injection."""
    from memshelf.team.demo import run_demo

    passed = run_demo(build_settings(store, model), typer.echo, verbose=verbose)
    typer.echo("\nteam demo passed" if passed else "\nteam demo FAILED")
    raise typer.Exit(0 if passed else 1)
