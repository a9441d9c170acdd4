"""The ``memshelf`` command. Domain errors become one friendly line and exit code 2 here."""

from __future__ import annotations

import sys

import typer

from memshelf.cli import (
    agent_cmds,
    bench_cmds,
    demo,
    doctor,
    eval_cmds,
    findings,
    keys,
    mcp,
    memories,
    models,
    serve,
    store_cmds,
    team,
    threads,
    worker,
)
from memshelf.cli._common import explain_unexpected, stop_on_sigterm
from memshelf.errors import MemshelfError

app = typer.Typer(
    name="memshelf",
    help="Long-term memory for LangGraph agents: every user gets their own shelf.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("doctor")(doctor.doctor)
app.command("reembed")(store_cmds.reembed)
app.command("sweep")(store_cmds.sweep)
app.command("redis-server")(store_cmds.redis_server)
app.command("demo")(demo.demo)
app.command("ask")(agent_cmds.ask)
app.command("chat")(agent_cmds.chat)
app.add_typer(models.app, name="models")
app.add_typer(memories.app, name="memories")
app.add_typer(keys.app, name="keys")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("mcp")(mcp.mcp)
app.add_typer(threads.app, name="threads")
app.command("forget-user")(threads.forget_user)
app.add_typer(eval_cmds.app, name="eval")
app.add_typer(bench_cmds.app, name="bench")
app.add_typer(team.app, name="team")
app.add_typer(findings.app, name="findings")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    stop_on_sigterm(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, standalone_mode=True)
    except MemshelfError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except Exception as exc:  # a fault with no designed message still gets one line
        code, message = explain_unexpected(exc)
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        sys.exit(code)
