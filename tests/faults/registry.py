"""Every fault the suite injects, as the rows of README's "When things go wrong" table.

A row says what was injected, what the user sees (``sees`` is a phrase the test
finds in the real stderr or exception) and what was lost. ``test_table.py``
checks that the README section is exactly :func:`render` and that every row
is injected by some test in this folder (``fault("<id>")``). Print the table
with ``python -m tests.faults.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """One row; ``sees`` is asserted, ``shown`` (default: built from it) goes in the README."""

    id: str
    area: str
    injected: str
    sees: str
    lost: str = "nothing"
    backends: str = "SQLite"
    via: str = "cli"  # "cli": the real command; "library": one open store / agent in-process
    shown: str = ""

    def what_you_see(self) -> str:
        if self.shown:
            return self.shown
        if self.via == "library":
            error = "StoreUnavailableError" if "Redis" in self.sees else "ModelError"
            return f"`{self.sees}…` ({error})"
        return f"`error: …{self.sees}…` (exit 2)"


_ROWS = [
    # --- the store file: what users hit first -----------------------------------------
    Fault(
        "sqlite-not-a-database",
        "store",
        "the store is a file that is not a database, or a corrupted one (`ask`, "
        "`memories list`, `threads list`, `doctor`, `sweep`, `serve`)",
        "is not a memshelf store",
        "nothing (the file is not touched)",
    ),
    Fault(
        "sqlite-other-program",
        "store",
        "`--store` names another program's SQLite database",
        "is a SQLite database of another program",
        "nothing (memshelf adds no tables to it)",
    ),
    Fault(
        "sqlite-newer-schema",
        "store",
        "a store written by a newer memshelf",
        "was written by a newer memshelf",
        "nothing (the file is not touched)",
    ),
    Fault(
        "sqlite-read-only-file",
        "store",
        "the store file is read-only",
        "cannot be written",
        "nothing (reads refresh TTLs, so memshelf refuses before the first write)",
    ),
    Fault(
        "sqlite-read-only-dir",
        "store",
        "the store's folder is read-only (no room for the -wal/-shm files)",
        "cannot be written",
    ),
    Fault(
        "data-dir-unwritable",
        "store",
        "`MEMSHELF_DATA_DIR` cannot be created (its parent is read-only)",
        "cannot be written",
    ),
    Fault(
        "data-dir-is-a-file",
        "store",
        "`MEMSHELF_DATA_DIR` is a file",
        "is a file, not a folder",
    ),
    Fault(
        "store-is-a-directory",
        "store",
        "`--store` names a directory",
        "is a directory, not a store file",
    ),
    Fault(
        "disk-full-mid-batch",
        "store",
        "the disk fills up in the middle of an import (`RLIMIT_FSIZE`)",
        "the disk is full or a file size limit was hit",
        "nothing: the import is one batch, rolled back; the file stays usable",
    ),
    Fault(
        "export-unwritable",
        "store",
        "`memories export --out` into a read-only folder",
        "Permission denied on",
        "nothing (the shelf is only read)",
    ),
    Fault(
        "two-cli-writers",
        "processes",
        "two CLI processes import onto one shelf at the same time",
        "both succeed",
        "nothing (every record of both imports is there)",
        "SQLite, Redis",
        shown="both succeed (SQLite waits for the lock; Redis batches are transactions)",
    ),
    # --- Redis ----------------------------------------------------------------------------
    Fault(
        "redis-unreachable",
        "redis",
        "no Redis at the URL",
        "Cannot reach Redis",
        backends="Redis",
    ),
    Fault(
        "redis-wrong-db",
        "redis",
        "a URL naming database 3",
        "memshelf needs database 0",
        backends="Redis",
    ),
    Fault(
        "redis-no-query-engine",
        "redis",
        "a plain redis-server without the query engine",
        "This Redis has no query engine",
        backends="Redis",
    ),
    Fault(
        "redis-allkeys-lru",
        "redis",
        "the server's `maxmemory-policy` is `allkeys-lru`",
        "uses maxmemory-policy allkeys-lru",
        "nothing yet: the command runs, the warning says Redis may evict memories",
        "Redis",
        shown="`warning: …uses maxmemory-policy allkeys-lru…` on stderr, then the result",
    ),
    Fault(
        "redis-restarted",
        "redis",
        "Redis restarts (AOF on) between two calls of one open store",
        "nothing: the next call reconnects",
        "nothing acknowledged",
        "Redis",
        via="library",
        shown="nothing: the next call reconnects (bounded retries)",
    ),
    Fault(
        "redis-killed-mid-batch",
        "redis",
        "Redis is SIGKILLed while a writer is in a batch loop (AOF, fsync always)",
        "Lost the connection to Redis",
        "nothing acknowledged (every batch that returned is there after restart)",
        "Redis",
        via="library",
    ),
    # --- models ---------------------------------------------------------------------------
    Fault(
        "models-dir-missing",
        "models",
        "the models directory does not exist",
        "memshelf models install",
        backends="-",
    ),
    Fault(
        "serve-fresh-data-dir",
        "models",
        "`serve` with a fresh `MEMSHELF_DATA_DIR` (its `models/` folder holds no chat "
        "model), before uvicorn starts",
        "memshelf models install",
        backends="-",
    ),
    Fault(
        "gguf-truncated",
        "models",
        "the GGUF file is truncated",
        "truncated or corrupted",
        backends="-",
    ),
    Fault(
        "gguf-replaced",
        "models",
        "the GGUF file is replaced by another of the same size",
        "corrupted or replaced",
        backends="-",
    ),
    Fault(
        "onnx-corrupted",
        "models",
        "the ONNX embedder file is corrupted",
        "is corrupted or not the expected file",
        backends="-",
    ),
    Fault(
        "provider-errors",
        "models",
        "the chat model raises (a hosted provider's 5xx or timeout, after its own retries)",
        "The chat model failed",
        "nothing: the thread keeps the message and takes the next turn",
        via="library",
    ),
    # --- processes --------------------------------------------------------------------------
    Fault(
        "sigkill-during-turn",
        "processes",
        "`memshelf ask` is SIGKILLed while the model is answering",
        "the next turn on the thread works",
        "only the killed turn's reply (never shown; its message stays in the thread)",
        shown="the next `ask` on the thread works and sees the earlier turns",
    ),
    Fault(
        "sigterm-during-turn",
        "processes",
        "`memshelf ask` gets SIGTERM while the model is answering",
        "the next turn on the thread works",
        "only the killed turn's reply (never shown; its message stays in the thread)",
        shown="the next `ask` on the thread works and sees the earlier turns",
    ),
    Fault(
        "sigkill-during-extraction",
        "processes",
        "`memshelf ask` is SIGKILLed while its memories are being extracted",
        "the next `ask` works",
        "nothing: the next start takes the job over and extracts it once (the fact is on "
        "the shelf once); the Redis job queue re-queues it",
        shown="the next `ask` works",
    ),
    Fault(
        "sigterm-during-extraction",
        "processes",
        "`memshelf ask` gets SIGTERM while its memories are being extracted",
        "it finishes writing them, then exits (code 143)",
        "nothing: the fact is on the shelf once, and the next `ask` recalls it",
        shown="it finishes writing them, then exits (code 143)",
    ),
    # --- bad input ------------------------------------------------------------------------
    Fault(
        "import-not-an-export",
        "input",
        "`memories import` of invalid UTF-8, JSON that is not an export, a bad record",
        "Cannot read",
        "nothing (all or nothing)",
        "SQLite",
        shown="`error: Cannot read FILE as an export…`, `…not dict` or `error: Record N…`",
    ),
    Fault(
        "odd-ids-and-texts",
        "input",
        "user ids, thread ids and memory texts from Hypothesis (control characters, "
        "huge, empty-looking, NUL, dots)",
        "a clear `error:` or the right result",
        "nothing (a refused write writes nothing)",
        "SQLite, Redis",
        via="library",
        shown="a `MemshelfError` / `error:` line (exit 2), or the right result",
    ),
]

FAULTS: dict[str, Fault] = {row.id: row for row in _ROWS}

# Bad inputs tried: Hypothesis examples per property (the tests use these numbers).
EXAMPLES = {
    "library-ids-and-texts": 150,
    "library-imports": 100,
    "cli-ids-and-texts": 12,
}

BEGIN = "<!-- faults:begin (generated by tests/faults/registry.py; checked by a test) -->"
END = "<!-- faults:end -->"


def fault(fault_id: str) -> Fault:
    """The row a test injects; an unknown id fails the test that names it."""
    return FAULTS[fault_id]


def render() -> str:
    """The README section between BEGIN and END."""
    lines = [
        "| fault injected | backends | what you see | what is lost |",
        "|---|---|---|---|",
    ]
    for row in _ROWS:
        lines.append(f"| {row.injected} | {row.backends} | {row.what_you_see()} | {row.lost} |")
    cli = sum(1 for row in _ROWS if row.via == "cli")
    lines += [
        "",
        f"Counts: {len(_ROWS)} kinds of fault injected ({cli} of them through the real "
        f"`memshelf` command), {sum(EXAMPLES.values())} bad inputs tried (Hypothesis "
        "examples, plus 5 malformed import files), acknowledged writes lost: 0.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"{BEGIN}\n{render()}\n{END}")
