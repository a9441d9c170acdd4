"""``memshelf team``: ask the team (supervisor, researcher, verifier, writer) a question;
``memshelf team demo``, the offline acceptance run over the shipped corpus; and
``memshelf team serve-corpus``, that corpus served alone (demo findings name its URLs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memshelf.cli._common import ModelSpec, StoreUrl, UserId, build_settings
from memshelf.config import Settings
from memshelf.team.corpus_server import DEFAULT_PORT

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


def source_warnings(
    settings: Settings, notes: Path | None, allow_origins: tuple[str, ...], question: str
) -> list[str]:
    """What keeps the team from researching ``question``, one line each (empty: nothing).

    A team with no web search, no notes folder and no URL in the question can only answer
    from findings it already has; say so before the run rather than after a bare answer."""
    import httpx

    web = settings.web_search == "tavily" and settings.tavily_api_key is not None
    folder = notes if notes is not None else settings.notes_dir
    warnings = []
    if not web and (folder is None or not folder.is_dir()) and "://" not in question:
        warnings.append(
            "the team has no sources to research: set MEMSHELF_WEB_SEARCH=tavily with "
            "TAVILY_API_KEY (and MEMSHELF_WEB_SEARCH_URL for a Tavily-compatible server, "
            "e.g. `memshelf team serve-corpus`), or a notes folder (--notes or "
            "MEMSHELF_NOTES_DIR); until then it answers only from verified findings."
        )
    elif folder is not None and not folder.is_dir():
        warnings.append(f"the notes folder {folder} does not exist; the team will not read notes.")
    if web and settings.web_search_url and not settings.fetch_allow_private:
        url = httpx.URL(settings.web_search_url)
        # the corpus server (and most local search stubs) name their pages 127.0.0.1
        origin = f"http://127.0.0.1:{url.port or 80}"
        if url.host in ("127.0.0.1", "localhost") and origin not in allow_origins:
            warnings.append(
                f"MEMSHELF_WEB_SEARCH_URL is the local server {origin}: its pages cannot "
                f"be fetched unless you pass --allow-local-origin {origin}."
            )
    return warnings


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
    from memshelf.namespaces import team_namespace
    from memshelf.team.demo import show_run
    from memshelf.team.graph import open_team, run_team

    team_namespace(team)  # a bad team id fails here, before any warning about sources
    settings = build_settings(store, model)
    for line in source_warnings(settings, notes, tuple(allow_local_origin or ()), question):
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)

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


Port = Annotated[
    int,
    typer.Option(
        "--port",
        min=0,
        max=65535,
        help="Where the corpus is served on 127.0.0.1 (0: any free port). The demo's "
        "findings name it, so serving it there again makes them verifiable again.",
    ),
]


@app.command("demo")
def demo(
    store: StoreUrl = None,
    model: ModelSpec = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every step.")] = False,
    port: Port = DEFAULT_PORT,
) -> None:
    """Run 1 researches, run 2 reuses its verified findings, run 3 meets a prompt injection."""
    from memshelf.team.demo import run_demo

    passed = run_demo(build_settings(store, model), typer.echo, verbose=verbose, port=port)
    typer.echo("\nteam demo passed" if passed else "\nteam demo FAILED")
    raise typer.Exit(0 if passed else 1)


@app.command("serve-corpus")
def serve_corpus_cmd(port: Port = DEFAULT_PORT) -> None:
    """Serve the demo's corpus on 127.0.0.1 until Ctrl-C.

    To verify the demo's findings again, or as a web search (MEMSHELF_WEB_SEARCH_URL)."""
    import threading

    from memshelf.team.corpus_server import NOTES, serve_corpus

    with serve_corpus(port) as origin:
        typer.echo(f"serving the team demo's corpus on {origin} (Ctrl-C stops)")
        typer.echo(f"  web search: MEMSHELF_WEB_SEARCH=tavily MEMSHELF_WEB_SEARCH_URL={origin}")
        typer.echo(f"  notes: --notes {NOTES}")
        typer.echo(
            f"  re-verify: memshelf findings verify --team T fd_... --allow-local-origin "
            f"{origin} --notes {NOTES}"
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopped")
