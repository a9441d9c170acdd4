"""Options shared by commands, and the one place settings are built for the CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from memshelf.config import Settings, load_settings

StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: MEMSHELF_STORE_URL or the embedded file)."),
]
ModelSpec = Annotated[
    str | None,
    typer.Option("--model", help="Chat model, e.g. local:qwen2.5-coder-1.5b or openai:gpt-4o."),
]
UserId = Annotated[str, typer.Option("--user", "-u", help="Whose shelf (the user id).")]


def build_settings(store: str | None = None, model: str | None = None) -> Settings:
    settings = load_settings()
    updates: dict[str, str] = {}
    if store is not None:
        updates["store_url"] = store
    if model is not None:
        updates["chat_model"] = model
    return settings.model_copy(update=updates) if updates else settings


# Exit codes: 2 = a fault or bad input the message explains; 1 = a bug in memshelf.
EXIT_FAULT = 2
EXIT_BUG = 1


def explain_unexpected(exc: BaseException) -> tuple[int, str]:
    """Exit code and one line for an error no layer below turned into a MemshelfError.

    Known outside faults (disk full, a dropped Redis connection) get their fix; anything
    else is called a bug, since users should never need a traceback. ``MEMSHELF_DEBUG=1``
    re-raises so the traceback is printed after all."""
    import errno
    import os
    import sqlite3

    if os.environ.get("MEMSHELF_DEBUG", "") not in ("", "0"):
        raise exc
    name = type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        where = f" {exc.filename}" if exc.filename else ""
        return EXIT_FAULT, f"Writing{where} failed: the disk is full. Free some space and retry."
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = exc.filename or "a file memshelf needs"
        return EXIT_FAULT, f"Permission denied on {where}. Make it writable, or use another path."
    if isinstance(exc, sqlite3.Error):
        return EXIT_FAULT, (
            f"SQLite failed: {exc}. Check that the data dir (MEMSHELF_DATA_DIR) is writable "
            "and has free space, then retry."
        )
    if (
        name in ("ConnectionError", "TimeoutError", "BusyLoadingError")
        and "redis" in type(exc).__module__
    ):
        return EXIT_FAULT, (
            f"Lost the connection to Redis ({name}: {exc}). Check that the server is up "
            "(for a local one: memshelf redis-server), then retry; acknowledged writes are kept."
        )
    return EXIT_BUG, (
        f"unexpected {name}: {exc}. This is a bug in memshelf; please report it with the "
        "command you ran and the output of `memshelf doctor` (MEMSHELF_DEBUG=1 shows the "
        "traceback)."
    )


# Commands that run to completion over an open store or agent. The servers (serve, worker,
# mcp, redis-server) handle SIGTERM themselves, and uvicorn re-raises it to the handler it
# found, so they keep the default.
_UNWIND_ON_SIGTERM = {"ask", "chat", "demo", "memories", "threads", "forget-user", "team"}


def stop_on_sigterm(argv: list[str]) -> None:
    """For the commands above, make SIGTERM unwind like Ctrl-C, so open stores close and
    the background writer writes the memories it holds before the process ends (the
    default kills it where it stands). A second SIGTERM kills at once."""
    import signal
    import threading

    if not argv or argv[0] not in _UNWIND_ON_SIGTERM:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
