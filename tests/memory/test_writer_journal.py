"""The in-process writer's jobs survive a SIGKILL: after a restart each runs once, not
twice, not never (issue 17). Real SQLite files, real subprocesses killed with SIGKILL,
the fake chat model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memshelf.config import Settings
from memshelf.embeddings import FakeEmbedder
from memshelf.llm.fake import rule_based_chat_model
from memshelf.memory import ExtractionJob, history, list_facts
from memshelf.memory.journal import (
    JOBS_ROOT,
    MAX_TAKEOVERS,
    JobJournal,
    job_key,
    jobs_namespace,
)
from memshelf.memory.writer import BackgroundWriter
from memshelf.ops.forget import forget_everything
from memshelf.stores import MemshelfStore, open_store
from memshelf.stores.redis import RedisStore

ROOT = Path(__file__).resolve().parents[2]
USER = "alice"
TEXTS = ["I live in Lisbon", "I have a cat named Miso", "I play the cello", "I drink green tea"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "shelf.db"


def _open(db: Path) -> MemshelfStore:
    return open_store(str(db), settings=Settings(data_dir=db.parent / "data", embeddings="fake"))


def _child(db: Path, mode: str, log: Path, mark: Path, *texts: str) -> subprocess.Popen[bytes]:
    args = [str(db), str(db.parent / "data"), mode, str(log), str(mark), *texts]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory._writer_child", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], *marks: Path) -> None:
    """SIGKILL the child once every mark exists (it is blocked where the test wants it)."""
    deadline = time.monotonic() + 120
    try:
        while not all(m.exists() for m in marks):
            assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline, "the child never got there"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL


def _finish(*procs: subprocess.Popen[bytes]) -> list[int]:
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-3000:]
    return [p.pid for p in procs]


def _extracted(log: Path, pids: list[int]) -> Counter[str]:
    """How often each message was extracted by the given processes."""
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return Counter(text for pid, text in (ln.split("\t", 1) for ln in lines) if int(pid) in pids)


def _shelf(db: Path) -> Counter[str]:
    with _open(db) as store:
        return Counter(str(i.value["text"]) for i in list_facts(store, USER))


def _journal_size(db: Path) -> int:
    with _open(db) as store:
        return len(store.search((JOBS_ROOT,), limit=1000))


def test_a_job_killed_mid_extraction_runs_once_after_restart(db: Path, tmp_path: Path) -> None:
    log, mark = tmp_path / "log", tmp_path / "mark"
    killed = _child(db, "kill-in-extract", log, mark, TEXTS[0])
    _kill_when(killed, mark, Path(f"{mark}.submitted"))
    assert _shelf(db) == Counter()  # the kill landed before anything was stored
    restarted = _finish(_child(db, "adopt", log, mark))
    assert _extracted(log, restarted) == Counter({TEXTS[0]: 1})
    assert _shelf(db) == Counter({TEXTS[0]: 1})
    assert _journal_size(db) == 0  # done: its record is gone
    assert _extracted(log, _finish(_child(db, "adopt", log, mark))) == Counter()  # not twice


def test_two_processes_taking_over_the_same_jobs_run_each_once(db: Path, tmp_path: Path) -> None:
    log, mark = tmp_path / "log", tmp_path / "mark"
    killed = _child(db, "kill-in-extract", log, mark, *TEXTS)
    _kill_when(killed, mark, Path(f"{mark}.submitted"))
    assert _journal_size(db) == len(TEXTS)
    go = tmp_path / "go"
    both = [_child(db, "adopt", log, go), _child(db, "adopt", log, go)]
    time.sleep(1.0)  # both are importing; the start line lets them open their writers together
    go.write_text("")
    adopters = _finish(*both)
    assert _extracted(log, adopters) == Counter(dict.fromkeys(TEXTS, 1))
    assert _shelf(db) == Counter(dict.fromkeys(TEXTS, 1))
    assert _journal_size(db) == 0


def test_a_job_finished_before_the_kill_is_not_run_again(db: Path, tmp_path: Path) -> None:
    log, mark = tmp_path / "log", tmp_path / "mark"
    killed = _child(db, "done-then-kill", log, mark, TEXTS[0], TEXTS[1])
    _kill_when(killed, mark, Path(f"{mark}.submitted"))
    assert _shelf(db) == Counter({TEXTS[0]: 1})
    restarted = _finish(_child(db, "adopt", log, mark))
    assert _extracted(log, restarted) == Counter({TEXTS[1]: 1})  # only the unfinished one
    assert _shelf(db) == Counter({TEXTS[0]: 1, TEXTS[1]: 1})


def test_a_job_killed_after_its_facts_were_stored_leaves_one_copy(db: Path, tmp_path: Path) -> None:
    log, mark = tmp_path / "log", tmp_path / "mark"
    killed = _child(db, "kill-after-commit", log, mark, TEXTS[0])
    _kill_when(killed, mark, Path(f"{mark}.submitted"))
    assert _shelf(db) == Counter({TEXTS[0]: 1}) and _journal_size(db) == 1
    restarted = _finish(_child(db, "adopt", log, mark))
    assert _extracted(log, restarted) == Counter({TEXTS[0]: 1})  # it did run again ...
    assert _shelf(db) == Counter({TEXTS[0]: 1})  # ... and settled as a duplicate
    with _open(db) as store:
        (fact,) = list_facts(store, USER)
        assert [e["op"] for e in history(store, USER, fact.key)] == ["add"]
    assert _journal_size(db) == 0


# --- in one process: leases, forget, opting out ---------------------------------------------


def _job(mid: str, text: str, thread: str = "t") -> ExtractionJob:
    return ExtractionJob(user_id=USER, thread_id=thread, message_id=mid, text=text)


def _strand(store: Any, writer_id: str, job: ExtractionJob, *, alive_s: float) -> None:
    """Record ``job`` as owned by a writer of this process whose lease ends in ``alive_s``."""
    journal = JobJournal(store, writer_id)
    journal.beat()
    lease = store.get(("extraction-writers",), writer_id).value
    store.put(("extraction-writers",), writer_id, {**lease, "alive_until": time.time() + alive_s})
    assert journal.record(job)


@pytest.fixture(params=["sqlite", "redis"])
def shelf(request: pytest.FixtureRequest, db: Path) -> Iterator[MemshelfStore]:
    """The store a writer journals to: a SQLite file, or a real Redis 8."""
    if request.param == "sqlite":
        with _open(db) as store:
            yield store
        return
    url = request.getfixturevalue("redis_url")
    index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    with RedisStore(url, index=index, prefix=f"j{uuid.uuid4().hex[:8]}") as store:
        yield store


def test_a_live_writers_jobs_are_left_alone_and_an_expired_lease_frees_them(
    shelf: MemshelfStore,
) -> None:
    _strand(shelf, "live", _job("1", TEXTS[0]), alive_s=60)
    _strand(shelf, "lapsed", _job("2", TEXTS[1]), alive_s=-1)
    writer = BackgroundWriter(shelf, rule_based_chat_model(), debounce_s=0)
    writer.close(timeout=30)
    assert {str(i.value["text"]) for i in list_facts(shelf, USER)} == {TEXTS[1]}
    (left,) = shelf.search(jobs_namespace(USER), limit=10)
    assert left.value["owner"] == "live" and left.value["text"] == TEXTS[0]
    forget_everything(shelf, None, USER)  # forget-me takes the unfinished job too
    assert shelf.search(jobs_namespace(USER), limit=10) == []


def test_forgetting_a_user_deletes_their_unfinished_jobs(db: Path) -> None:
    with _open(db) as store:
        _strand(store, "gone", _job("1", TEXTS[0]), alive_s=-1)
        assert len(store.search(jobs_namespace(USER), limit=10)) == 1
        forget_everything(store, None, USER)
        assert store.search(jobs_namespace(USER), limit=10) == []
        writer = BackgroundWriter(store, rule_based_chat_model(), debounce_s=0)
        writer.close(timeout=30)
        assert list_facts(store, USER) == []  # nothing came back after the forget


def test_a_writer_that_is_not_durable_writes_no_journal(db: Path) -> None:
    with _open(db) as store:
        writer = BackgroundWriter(store, rule_based_chat_model(), debounce_s=0, durable=False)
        writer.submit(_job("1", TEXTS[0]))
        assert writer.wait(USER, timeout=30)
        writer.close()
        assert store.search((JOBS_ROOT,), limit=10) == []
        assert store.search(("extraction-writers",), limit=10) == []


def test_a_search_by_prefix_finds_the_one_namespace_below_it(db: Path) -> None:
    """The SQLite store answered a prefix holding one deeper namespace as if empty."""
    with _open(db) as store:
        store.put(("a", "b", "c"), "k", {"text": "x"}, index=False)
        assert [i.key for i in store.search(("a",))] == ["k"]
        assert [i.key for i in store.search(("a", "b"))] == ["k"]


def test_two_users_threads_of_one_name_never_share_a_job_record(db: Path) -> None:
    with _open(db) as store:
        journal = JobJournal(store, "w")
        journal.beat()
        for user in (USER, "mallory"):
            job = ExtractionJob(user_id=user, thread_id="t", message_id="1", text=f"I am {user}")
            assert journal.record(job)
        assert job_key(USER, "t", "1") != job_key("mallory", "t", "1")
        mine = store.search(jobs_namespace(USER), limit=10)
        assert [i.value["text"] for i in mine] == [f"I am {USER}"]


def test_a_job_whose_writers_keep_dying_is_dropped_not_run_forever(db: Path) -> None:
    with _open(db) as store:
        _strand(store, "gone", _job("1", TEXTS[0]), alive_s=-1)
        (item,) = store.search(jobs_namespace(USER), limit=10)
        store.put(item.namespace, item.key, {**item.value, "adopted": MAX_TAKEOVERS}, index=False)
        writer = BackgroundWriter(store, rule_based_chat_model(), debounce_s=0)
        writer.close(timeout=30)
        assert list_facts(store, USER) == [] and store.search(jobs_namespace(USER)) == []
