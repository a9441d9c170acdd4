"""Options shared by commands, and the one place settings are built for the CLI."""

from __future__ import annotations

from pathlib import Path
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


def check_store_file(settings: Settings, *, reads_only: bool) -> None:
    """Catch the store URL a user did not mean before it silently opens an empty store.

    ``sqlite:///name.db`` names ``/name.db`` (three slashes, then an absolute path); when
    that file does not exist but ``./name.db`` does, the user meant the latter. And a
    command that only reads (list, search, export, threads) on a store file that does not
    exist would create an empty one and print nothing: both are errors that say which
    file was opened and how to name the intended one."""
    import os

    from memshelf.errors import StoreFileError
    from memshelf.stores import is_redis_url, resolve_path

    url = settings.store_url
    if not url or is_redis_url(url) or url.startswith("memory://"):
        return  # the default file (missing means a fresh, empty shelf), or a server
    path = resolve_path(url, settings)
    if path == ":memory:":
        return
    if os.path.lexists(path):
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise StoreFileError(
                path,
                f"{path} is empty (0 bytes), not a memshelf store; it was left as it is. Check "
                "--store or MEMSHELF_STORE_URL, or restore the file from a backup.",
            )
        return
    here = Path.cwd() / path.lstrip("/")
    meant = here if url.startswith("sqlite://") and here.exists() else None
    if meant is None and not reads_only:
        return  # a write to a new file starts a new store there
    hint = (
        f" {url} names {path} (after sqlite:// comes an absolute path), so the file {meant} "
        f"here was not used; pass --store {meant} (or sqlite://{meant})."
        if meant
        else ""
    )
    start = (
        "; `memshelf memories add` or `memories import` starts a new store at a new path"
        if reads_only
        else ""
    )
    raise StoreFileError(
        path,
        f"There is no memshelf store at {path}.{hint} Check --store or MEMSHELF_STORE_URL{start}.",
    )


# Exit codes: 2 = a fault or bad input the message explains; 1 = a bug in memshelf.
EXIT_FAULT = 2
EXIT_BUG = 1


def _unwritable(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be written, in the user's terms, with what to do about it."""
    import errno

    folder = path.parent
    if path.is_dir() or isinstance(exc, IsADirectoryError):
        return (
            f"cannot write {path}: it is a directory. Add a file name ({path / 'shelf.json'}) "
            "or choose another path"
        )
    if not folder.exists() or isinstance(exc, FileNotFoundError):
        return (
            f"cannot write {path}: folder {folder} does not exist. Create it "
            f"(mkdir -p {folder}) or choose another path"
        )
    if not folder.is_dir() or exc.errno == errno.ENOTDIR:
        return f"cannot write {path}: {folder} is a file, not a folder. Choose another path"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write {path}: permission denied (the file or its folder is read-only). "
            "Make it writable or choose another path"
        )
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"cannot write {path}: the disk is full. Free some space or choose another path"
    return f"cannot write {path}: {exc.strerror or exc}. Choose another path"


def write_output(path: Path, text: str) -> None:
    """Write a command's ``--out`` file whole or not at all: a temp file beside it (mode
    0600: memories are private) is renamed over it, so a failure (full disk, bad folder)
    never leaves half a file or clobbers an earlier good one. In a read-only folder an
    existing writable file is rewritten in place, as the user allowed, and a pipe or
    device (``--out /dev/stdout``) is written into, never replaced. A failure is one
    :class:`ConfigurationError` naming the path and the fix, not a traceback."""
    import os
    import tempfile

    from memshelf.errors import ConfigurationError

    path = path.expanduser()
    tmp: str | None = None
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        if path.exists() and not path.is_file():  # a pipe or device (/dev/stdout, >(gzip)):
            with path.open("w", encoding="utf-8") as fh:  # nothing to replace, so write into it
                fh.write(text)
            return
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied", str(path))
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except PermissionError:
            if not path.is_file():
                raise
            path.write_text(text, encoding="utf-8")
            return
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigurationError(_unwritable(path, exc) + ".") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


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
