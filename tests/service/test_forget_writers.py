"""Forget-me served by one process clears what every process's writer holds (issue 13):
two BackgroundWriters sharing one real store stand for two service processes."""

from __future__ import annotations

from pathlib import Path

from memshelf.config import Settings
from memshelf.llm.fake import rule_based_chat_model
from memshelf.memory import BackgroundWriter
from memshelf.memory.writer import ExtractionJob, status_namespace
from memshelf.ops import memories as ops
from memshelf.ops.forget import forget_everything
from memshelf.stores import open_store

FACT = "I am allergic to penicillin and my doctor is Dr. Okafor."


def _quoted(value: object) -> bool:
    return "penicillin" in repr(value).lower() or "okafor" in repr(value).lower()


def test_forget_me_leaves_no_fact_text_in_another_process_writer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake")
    with open_store(settings=settings) as store:
        a = BackgroundWriter(store, rule_based_chat_model(), debounce_s=0, share_status=True)
        b = BackgroundWriter(store, rule_based_chat_model(), debounce_s=0, share_status=True)
        try:
            b.submit(ExtractionJob("alice", "t1", "m1", FACT))
            assert b.wait("alice", "t1", timeout=30)
            before = b.status("alice", "t1")
            assert before.state == "done" and before.outcomes  # op and key of each fact
            assert all(o.key for o in before.outcomes if o.op == "ADD")
            assert not _quoted(before)  # no status keeps a fact's words, here...
            assert not _quoted([i.value for i in store.search(status_namespace("alice"))])
            assert ops.list_memories(store, "alice").total > 0

            forget_everything(store, None, "alice", writer=a)  # forget-me via process A
            assert ops.list_memories(store, "alice").total == 0

            after = b.status("alice", "t1")  # B drops its statuses from before the forget
            assert after.outcomes == [] and after.state == "idle", after
            b.debounce_s = 5.0  # the next message's batch has not run yet
            b.submit(ExtractionJob("alice", "t1", "m2", "ok thanks"))
            stored = [i.value for i in store.search(status_namespace("alice"))]
            assert stored and all(r.get("outcomes") == [] for r in stored), stored
            assert b.status("alice", "t1").done_messages == 0  # counted afresh
        finally:
            a.close()
            b.close()
