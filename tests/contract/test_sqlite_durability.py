"""The embedded store survives a crash: a writer killed with SIGKILL loses no acknowledged
batch and leaves no half-written one.

A child process writes batches (several puts each, tagged with the batch number
and size) and prints each batch's number once ``batch()`` has returned; the
parent kills it mid-stream, reopens the file and checks what is there. The
Redis store has the same test in ``tests/redis/test_backend.py``.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import DIMS, fake_index

USERS = 3
PROGRESS = ("progress",)
TABLES = ("items", "vectors", "items_fts")

_WRITER = textwrap.dedent(
    f"""
    import sys
    from langgraph.store.base import PutOp
    from memshelf.embeddings import FakeEmbedder
    from memshelf.stores.sqlite import SqliteStore

    path, start = sys.argv[1], int(sys.argv[2])
    index = {{"embed": FakeEmbedder({DIMS}), "dims": {DIMS}, "fields": ["text"]}}
    store = SqliteStore(path, index=index)
    for n in range(start, start + 100_000):
        count = 2 + n % 5
        ops = [
            PutOp(("memories", f"user{{n % {USERS}}}"), f"b{{n}}-{{j}}",
                  {{"text": f"batch {{n}} item {{j}} of {{count}} token b{{n}}i{{j}}",
                    "batch": n, "count": count}})
            for j in range(count)
        ]
        ops.append(PutOp({PROGRESS!r}, "latest", {{"text": f"latest {{n}}", "batch": n}}))
        store.batch(ops)
        sys.stdout.write(f"{{n}}\\n")  # acknowledged: batch() returned
        sys.stdout.flush()
    """
)


def _run_and_kill(path: Path, start: int, acks_before_kill: int, jitter: float) -> set[int]:
    """Start a writer, SIGKILL it after some acknowledgements; every batch it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acked: set[int] = set()
    try:
        while len(acked) < acks_before_kill:
            line = proc.stdout.readline()
            assert line.endswith(b"\n"), f"writer died: {proc.stderr.read().decode()[-2000:]}"
            acked.add(int(line))
        time.sleep(jitter)  # let it get somewhere inside a later batch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    rest = proc.stdout.read()  # acknowledgements written before the kill landed
    acked.update(int(n) for n in rest.split(b"\n")[:-1])  # a cut-off last line is no ack
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


def _text(n: int, j: int) -> str:
    return f"batch {n} item {j} of {2 + n % 5} token b{n}i{j}"


def _check_store(path: Path, acked: set[int]) -> int:
    """Everything acknowledged is there, whole and searchable; returns the last batch."""
    with SqliteStore(path, index=fake_index()) as store:
        sql = store._conn.execute
        assert sql("PRAGMA integrity_check").fetchall() == [("ok",)]
        sql("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")  # raises if corrupt
        held = [sql(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
        assert len(set(held)) == 1, f"items, vectors, keywords: {held}"  # one text per item

        batches: dict[int, set[str]] = defaultdict(set)
        for user in range(USERS):
            for item in store.search(("memories", f"user{user}"), limit=100_000):
                n, j = (int(part) for part in item.key[1:].split("-"))
                assert item.value == {"text": _text(n, j), "batch": n, "count": 2 + n % 5}
                batches[n].add(item.key)
        for n, keys in batches.items():
            assert keys == {f"b{n}-{j}" for j in range(2 + n % 5)}, f"batch {n} is half-written"
        present = set(batches)
        assert acked <= present, f"acknowledged batches lost: {sorted(acked - present)}"
        last = max(present)
        assert present == set(range(last + 1)), "a batch is missing before the last one"
        assert last <= max(acked) + 1  # at most the batch in flight, committed but unacked
        latest = store.get(PROGRESS, "latest")
        assert latest is not None and latest.value["batch"] == last  # same transaction

        sample = random.Random(last).sample(sorted(acked), min(5, len(acked)))
        for n in sample:  # vector + keyword search, as a fresh process after the crash
            hits = store.search(("memories", f"user{n % USERS}"), query=_text(n, 1), limit=1)
            assert hits[0].key == f"b{n}-1"
    with SqliteStore(path, index=fake_index(), keyword_weight=0.0) as vectors_only:
        for n in sample:
            hits = vectors_only.search(("memories", f"user{n % USERS}"), query=_text(n, 1))
            assert hits[0].key == f"b{n}-1"
    with SqliteStore(path) as keywords_only:  # no embedder: FTS5 alone
        for n in sample:
            hits = keywords_only.search(("memories", f"user{n % USERS}"), query=f"b{n}i0")
            assert hits[0].key == f"b{n}-0"
    return last


def test_every_acknowledged_batch_survives_sigkill_and_none_is_half_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.db"
    SqliteStore(path, index=fake_index()).close()
    rng = random.Random(20240611)
    acked: set[int] = set()
    start = 0
    for acks_before_kill in (1, 7, 40, 120):  # the same file is crashed, reopened, crashed
        acked |= _run_and_kill(path, start, acks_before_kill, rng.uniform(0.0, 0.02))
        start = _check_store(path, acked) + 1
