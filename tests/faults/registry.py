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
        "the store is a file that is not a database, or a corrupted one (`ask`, every "
        "`memories` and `threads` command, `doctor`, `sweep`, `serve`)",
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
        "`MEMSHELF_DATA_DIR` cannot be created (its parent is read-only) or written",
        "(set by MEMSHELF_DATA_DIR) cannot be",
    ),
    Fault(
        "data-dir-is-a-file",
        "store",
        "`MEMSHELF_DATA_DIR` is a file",
        "(set by MEMSHELF_DATA_DIR) is a file, not a folder",
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
        "permission denied",
        "nothing (the shelf is only read; an earlier export there is kept whole)",
        shown="`error: cannot write PATH: permission denied…` (exit 2)",
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
    # --- interrupted turns and hosted providers (test_interrupt_faults, test_provider_faults)
    Fault(
        "sigterm-during-answer",
        "processes",
        '`memshelf ask "My sister is called Ada"` gets SIGTERM while the model answers',
        "interrupted: the answer was not finished",
        "only the reply: the message stays in the thread (the run marked finished) and its "
        "fact is written before exit, once; no job is left in the journal (a model slower "
        "than 10 s leaves it to the next command, which writes it once, with a second line "
        "saying so)",
        shown="`interrupted: the answer was not finished…` (one line), exit 143",
    ),
    Fault(
        "ctrl-c-during-answer",
        "processes",
        "Ctrl-C (SIGINT) to `memshelf ask` while the model answers",
        "interrupted: the answer was not finished",
        "only the reply, as for SIGTERM",
        shown="`interrupted: the answer was not finished…` (one line), exit 130",
    ),
    Fault(
        "sigterm-reply-given",
        "processes",
        "`memshelf ask` gets SIGTERM after printing the reply, while extracting",
        "interrupted: the reply was given",
        "nothing: the fact is written before exit, once",
        shown="the reply, then `interrupted: the reply was given…` (one line), exit 143",
    ),
    Fault(
        "sigkill-answer-restart",
        "processes",
        "`memshelf ask` is SIGKILLed while the model answers, then run again",
        "the next `ask` works",
        "only the reply: the message was journalled before the model ran, so the next "
        "`ask` extracts it once and finishes the half-way run",
        shown="the next `ask` works and recalls the killed turn's fact",
    ),
    Fault(
        "ctrl-c-during-tool",
        "processes",
        "Ctrl-C while a tool runs (the model's tool call has no result yet)",
        "KeyboardInterrupt",
        "only the reply: the unanswered tool call is dropped, so providers accept the thread",
        via="library",
        shown="`KeyboardInterrupt`; the next turn on the thread works",
    ),
    Fault(
        "provider-http-500",
        "models",
        "a hosted provider (`openai:` against a local fake server) answers HTTP 500",
        "returned HTTP 500 after 1 retries",
        "nothing: the message stays in the thread, its fact is extracted by the next `ask`",
        shown="`error: The chat model failed: the model provider (…) returned HTTP 500 after N "
        "retries (MEMSHELF_LLM_MAX_RETRIES)…` (exit 2), after N + 1 requests",
    ),
    Fault(
        "provider-timeout",
        "models",
        "a hosted provider (`openai:` against a local fake server) never answers",
        "timed out after 1 s (MEMSHELF_LLM_TIMEOUT)",
        "nothing, as for HTTP 500",
        shown="`error: The chat model failed: the model provider (…) timed out after N s "
        "(MEMSHELF_LLM_TIMEOUT)…` (exit 2), within (retries + 1) x timeout plus backoff",
    ),
    Fault(
        "sigterm-serve-extracting",
        "processes",
        "`memshelf serve` (SQLite) gets SIGTERM while a run's memories are being extracted",
        "a clean exit",
        "nothing: the fact is on the shelf once, no job left in the journal",
        shown="a clean exit (code 0) once the extraction is written",
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
    # --- a new user's first hour (issue 17; test_new_user_faults) -------------------------
    Fault(
        "sqlite-damaged-tables",
        "store",
        "a memshelf store with a damaged table and index (first pages overwritten; the rows "
        "`memories list` reads intact), under every `memories` and `threads` command",
        "is not a memshelf store",
        "nothing (the file is not touched)",
    ),
    Fault(
        "sqlite-url-relative-path",
        "store",
        "`--store sqlite:///shelf.db` meant for `./shelf.db` (the URL names `/shelf.db`)",
        "There is no memshelf store at /",
        "nothing (no empty store is created at `/shelf.db`)",
        shown="`error: There is no memshelf store at /shelf.db. …names /shelf.db…, so the file "
        "./shelf.db here was not used; pass --store …` (exit 2)",
    ),
    Fault(
        "store-file-missing",
        "store",
        "`memories list` / `threads list` with `--store` naming a file that does not exist",
        "There is no memshelf store at",
        "nothing (no empty store is created; `memories add` or `import` starts one)",
    ),
    Fault(
        "store-file-empty",
        "store",
        "`memories list`, `threads list` or `doctor` on a store file truncated to 0 bytes",
        "is empty (0 bytes), not a memshelf store",
        "nothing (the file is left empty, not given a new schema)",
    ),
    Fault(
        "redis-url-unreadable",
        "redis",
        "a Redis URL redis-py cannot parse: a port that is not a number, or a raw `/` in "
        "the password",
        "cannot be read",
        backends="Redis",
        shown="`error: The Redis URL sha256:… cannot be read (is its port a number? …). Write "
        "it as redis://[:PASSWORD@]HOST:6379/0.` (exit 2): no part of the password is shown",
    ),
    Fault(
        "data-dir-empty",
        "store",
        "`MEMSHELF_DATA_DIR` set to an empty value",
        "MEMSHELF_DATA_DIR",
        shown="`error: Invalid setting: MEMSHELF_DATA_DIR: … is empty, which would put "
        "memshelf's files in the current folder…` (exit 2)",
    ),
    Fault(
        "export-bad-path",
        "store",
        "`memories export --out` into a folder that does not exist, onto a directory, or "
        "under a file",
        "cannot write",
        "nothing (no half-written file is left)",
        shown="`error: cannot write PATH: folder … does not exist. Create it (mkdir -p …) or "
        "choose another path` (or `…it is a directory…`, `…is a file, not a folder…`; exit 2)",
    ),
    Fault(
        "export-disk-full",
        "store",
        "the disk fills up while `memories export --out` writes over an earlier export",
        "the disk is full",
        "nothing: the earlier export is kept whole, no partial file is left",
        shown="`error: cannot write PATH: the disk is full. Free some space or choose another "
        "path` (exit 2)",
    ),
    Fault(
        "gguf-damaged-listed",
        "models",
        "`models list` and `doctor` with a truncated GGUF installed",
        "is damaged (size",
        backends="-",
        shown="`models list` says `damaged (size X of Y bytes): run memshelf models install "
        "--force NAME`; `doctor`: `error: …is damaged (size…` (exit 2)",
    ),
    Fault(
        "redis-unreachable-named",
        "redis",
        "no Redis at a URL carrying a user name and password",
        "Cannot reach Redis at redis://***:***@127.0.0.1:",
        backends="Redis",
        shown="`error: Cannot reach Redis at redis://***:***@HOST:PORT/0…` (exit 2): the "
        "server is named, the secret never",
    ),
    Fault(
        "default-data-dir-unwritable",
        "store",
        "the default data folder (`~/.local/share/memshelf`, MEMSHELF_DATA_DIR unset) "
        "cannot be created",
        "(the default data folder",
        shown="`error: The data folder … (the default data folder, …; MEMSHELF_DATA_DIR "
        "changes it) cannot be created… set MEMSHELF_DATA_DIR to a writable folder` (exit 2)",
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
