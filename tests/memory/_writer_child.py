"""A process with a :class:`BackgroundWriter` on a SQLite file, for the kill tests.

``python -m tests.memory._writer_child DB DATA MODE LOG MARK [TEXT ...]``: every
extraction is appended to LOG as ``<pid>\\t<message>``. Modes:

- ``kill-in-extract``: submit each TEXT (one thread each; MARK.submitted once all are);
  the first extraction writes MARK and blocks, so the test can SIGKILL it there;
- ``kill-after-commit``: submit each TEXT; once the first batch's facts are stored, write
  MARK and block (killed after the commit, before its job record is deleted);
- ``done-then-kill``: submit the first TEXT and wait for it, then as ``kill-in-extract``
  for the others;
- ``adopt``: wait for MARK to exist (a start line for several processes), open a writer
  (it takes over dead writers' jobs, pausing between finding them and claiming them, so
  rivals started together both find them) and close it once they are written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import memshelf.memory.journal as journal_module
import memshelf.memory.writer as writer_module
from memshelf.config import Settings
from memshelf.llm import fake
from memshelf.memory.writer import BackgroundWriter, ExtractionJob
from memshelf.stores import open_store

USER = "alice"


def main(db: str, data: str, mode: str, log: str, mark: str, texts: list[str]) -> None:
    blocking = {"on": mode in ("kill-in-extract", "done-then-kill")}

    def extract(messages: list[Any], schema: Any) -> Any:
        if getattr(schema, "__name__", "") == "ExtractedFacts":
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()}\t{fake._user_message(messages)}\n")
            if blocking["on"]:
                Path(mark).write_text("extracting")
                time.sleep(600)
        return fake._structured(messages, schema)

    if mode == "kill-after-commit":
        remember = writer_module.remember

        def remember_then_block(*args: Any, **kwargs: Any) -> Any:
            outcomes = remember(*args, **kwargs)
            Path(mark).write_text("committed")
            time.sleep(600)
            return outcomes

        writer_module.remember = remember_then_block
    if mode == "adopt":
        stranded = journal_module.JobJournal.stranded

        def slow_stranded(self: Any) -> Any:
            found = stranded(self)
            time.sleep(0.5)  # a slow store: the rivals both see the jobs stranded
            return found

        journal_module.JobJournal.stranded = slow_stranded  # type: ignore[method-assign]
        while not Path(mark).exists():
            time.sleep(0.01)
    model = fake.ScriptedChatModel(structured=extract)
    with open_store(db, settings=Settings(data_dir=Path(data), embeddings="fake")) as store:
        writer = BackgroundWriter(store, model, debounce_s=0.05)
        jobs = [
            ExtractionJob(user_id=USER, thread_id=f"t{n}", message_id=f"m{n}", text=text)
            for n, text in enumerate(texts)
        ]
        if mode == "done-then-kill":
            blocking["on"] = False
            writer.submit(jobs.pop(0))
            assert writer.wait(USER, timeout=60)
            blocking["on"] = True
        for job in jobs:
            writer.submit(job)
        if mode != "adopt":
            Path(mark + ".submitted").write_text("")
            time.sleep(600)  # until killed
        writer.close()


if __name__ == "__main__":
    main(*sys.argv[1:6], texts=sys.argv[6:])
