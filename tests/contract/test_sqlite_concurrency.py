"""Several connections, one SQLite file: a search sees every write acknowledged before it.

Each ``SqliteStore`` caches a namespace's vectors and drops the cache when
``PRAGMA data_version`` says another connection committed. These tests pin the
races around that check: a foreign commit landing while we write (or sweep),
and many processes writing and searching at once.
"""

from __future__ import annotations

import multiprocessing as mp
import random
from pathlib import Path
from typing import Any

import pytest

from memshelf.stores.sqlite import SqliteStore
from tests.contract.conftest import fake_index

NS = ("memories", "u")


def _ranking(store: SqliteStore, query: str) -> list[tuple[str, float]]:
    return [(h.key, round(h.score or 0.0, 5)) for h in store.search(NS, query=query, limit=10)]


@pytest.fixture
def two_stores(tmp_path: Path) -> Any:
    """Two stores on one file (two connections, as two processes would have); A has its
    namespace cached."""
    path = tmp_path / "race.db"
    a = SqliteStore(path, index=fake_index())
    b = SqliteStore(path, index=fake_index())
    a.put(NS, "tea", {"text": "I drink green tea"})
    assert [k for k, _ in _ranking(a, "deploy on fly io")] == ["tea"]  # vectors now cached
    yield path, a, b
    a.close()
    b.close()


def _check_sees_foreign_item(path: Path, a: SqliteStore) -> None:
    assert a.get(NS, "fly") is not None
    with SqliteStore(path, index=fake_index()) as fresh:
        expected = _ranking(fresh, "deploy on fly io")
    assert expected[0][0] == "fly"
    assert _ranking(a, "deploy on fly io") == expected


def test_a_commit_landing_during_our_own_put_is_searched(
    two_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, a, b = two_stores
    write = a._write

    def foreign_commit_then_write(*args: Any, **kwargs: Any) -> None:
        # After A's data_version check, before A's transaction: the window that was lost.
        b.put(NS, "fly", {"text": "I deploy on fly io"})
        write(*args, **kwargs)

    monkeypatch.setattr(a, "_write", foreign_commit_then_write)
    a.put(NS, "ramen", {"text": "my favourite food is ramen"})
    monkeypatch.undo()
    _check_sees_foreign_item(path, a)


def test_a_commit_landing_during_our_own_sweep_is_searched(
    two_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, a, b = two_stores
    tx = a._tx

    def foreign_commit_then_tx() -> Any:
        b.put(NS, "fly", {"text": "I deploy on fly io"})
        return tx()

    monkeypatch.setattr(a, "_tx", foreign_commit_then_tx)
    assert a.sweep_ttl() == 0
    monkeypatch.undo()
    _check_sees_foreign_item(path, a)


# --------------------------------------------------------------- many processes
WORKERS = 4
PUTS = 50


def _text(worker: int, n: int) -> str:
    return f"note {n} from worker {worker} token w{worker}x{n}"


def _stress_worker(worker: int, path: str, acked: Any, problems: Any, barrier: Any) -> None:
    """Put, acknowledge, search; every key acknowledged before a search must be in it."""
    rng = random.Random(worker)
    store = SqliteStore(path, index=fake_index())
    try:
        barrier.wait(timeout=120)
        for n in range(PUTS):
            key = f"w{worker}-{n}"
            store.put(NS, key, {"text": _text(worker, n), "worker": worker})
            acked.append(key)
            before = list(acked)  # every write acknowledged before this search starts
            target = rng.choice([k for k in before if k != "seed"])
            w, i = (int(part) for part in target[1:].split("-"))
            hits = store.search(NS, query=_text(w, i), limit=1000)
            missing = set(before) - {h.key for h in hits}
            if missing:
                problems.append(f"worker {worker} put {n}: search missed {sorted(missing)}")
            elif hits[0].key != target:
                problems.append(f"worker {worker} put {n}: {target} ranked below {hits[0].key}")
    except Exception as exc:  # reported to the parent, which fails the test
        problems.append(f"worker {worker} crashed: {exc!r}")
    finally:
        store.close()


def test_every_acknowledged_write_is_searched_in_every_process(tmp_path: Path) -> None:
    path = tmp_path / "stress.db"
    with SqliteStore(path, index=fake_index()) as seed:
        seed.put(NS, "seed", {"text": "created before the workers start"})
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        acked, problems = manager.list(["seed"]), manager.list()
        barrier = manager.Barrier(WORKERS)
        procs = [
            ctx.Process(target=_stress_worker, args=(w, str(path), acked, problems, barrier))
            for w in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=180)
        alive = [p for p in procs if p.is_alive()]
        for proc in alive:
            proc.kill()
        assert not alive, "a worker hung"
        assert [p.exitcode for p in procs] == [0] * WORKERS
        assert list(problems) == []
        assert len(acked) == 1 + WORKERS * PUTS
    with SqliteStore(path, index=fake_index()) as store:
        assert len(store.search(NS, query="note from worker", limit=1000)) == 1 + WORKERS * PUTS
