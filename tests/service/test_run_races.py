"""Cross-process races of the run manager (issue 13): two RunManagers on one real store
stand for two ``memshelf serve --workers`` processes, on SQLite and on Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from memshelf.ops.forget import runs_namespace
from memshelf.service import _runs
from memshelf.service._runs import CANCELS, Run, RunManager, ThreadBusyError
from memshelf.stores import open_store
from tests.service.conftest import service_settings


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    with open_store(settings=service_settings(tmp_path, request.param, redis_url)) as opened:
        yield opened


@pytest.fixture
def pair(store: BaseStore) -> Iterator[tuple[RunManager, RunManager]]:
    a, b = RunManager(None, store=store), RunManager(None, store=store)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _run(thread: str = "t1", user: str = "alice") -> Run:
    return Run(user_id=user, thread_id=thread, modes=["values"], multitask_strategy="reject")


def _holders(managers: tuple[RunManager, ...]) -> list[str]:
    return [run_id for m in managers for run_id in m._leased]


def _lapse(store: BaseStore, run: Run) -> None:
    """What a process stalled for LEASE_S (or whose store writes failed) leaves behind."""
    ns, key = _runs.lease_namespace(run.user_id), f"{run.thread_id}/{run.run_id}"
    item = store.get(ns, key)
    assert item is not None
    store.put(ns, key, {**item.value, "expires_at": time.time() - 1}, index=False)


def test_a_lapsed_holder_stops_instead_of_taking_the_thread_back(
    store: BaseStore, pair: tuple[RunManager, RunManager]
) -> None:
    a, b = pair
    run_a, run_b = _run(), _run()
    assert a._try_lease(run_a)
    assert not b._try_lease(run_b)  # held: refused
    _lapse(store, run_a)
    assert b._try_lease(run_b)  # A's lease lapsed: B rightly takes the thread
    assert not a._refresh_lease(run_a)  # A recovers: it finds it lost the thread...
    assert run_a.stop.is_set()  # ...and stops its run
    assert b._refresh_lease(run_b) and not run_b.stop.is_set()
    assert _holders(pair) == [run_b.run_id]
    assert a.leased_elsewhere("alice", "t1")  # B's run, seen from A


def test_a_holder_overtaken_while_refreshing_yields_to_the_newer_holder(
    store: BaseStore, pair: tuple[RunManager, RunManager]
) -> None:
    """A read its lease live, then stalled past expiry before writing the refresh: B took
    the thread meanwhile. Whoever refreshes first, A ends up stopped and B holds."""
    a, b = pair
    run_a, run_b = _run(), _run()
    assert a._try_lease(run_a)
    real_get = store.get

    def stalled_get(namespace: tuple[str, ...], key: str, **kw: object) -> object:
        found = real_get(namespace, key, **kw)  # type: ignore[arg-type]
        if key.endswith(run_a.run_id):  # A has read its own lease, live
            del store.get  # once
            _lapse(store, run_a)
            assert b._try_lease(run_b)
        return found

    store.get = stalled_get  # type: ignore[method-assign,assignment]
    assert not a._refresh_lease(run_a)
    assert "get" not in vars(store)
    assert run_a.stop.is_set() and b._refresh_lease(run_b)
    assert _holders(pair) == [run_b.run_id]


def test_two_takers_delayed_between_read_and_write_never_both_hold(
    pair: tuple[RunManager, RunManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    run_a, run_b = _run(), _run()
    wrote = threading.Barrier(2)
    real_others = RunManager._others

    def after_both_wrote(self: RunManager, run: Run) -> list[dict[str, object]]:
        if run in (run_a, run_b) and run.run_id not in self._leased:
            wrote.wait(10)  # both claims written before either reads: the worst order
        return real_others(self, run)

    monkeypatch.setattr(RunManager, "_others", after_both_wrote)
    got: dict[str, bool] = {}
    threads = [
        threading.Thread(target=lambda: got.__setitem__("a", a._try_lease(run_a))),
        threading.Thread(target=lambda: got.__setitem__("b", b._try_lease(run_b))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert list(got.values()).count(True) <= 1, got
    assert len(_holders(pair)) == list(got.values()).count(True)
    monkeypatch.undo()
    a._release(run_a)
    b._release(run_b)
    assert a._try_lease(_run())  # a claim that backed off left nothing behind


def test_forget_me_blocks_runs_in_every_process(
    store: BaseStore, pair: tuple[RunManager, RunManager]
) -> None:
    a, b = pair
    with a.blocking("alice"):
        with pytest.raises(ThreadBusyError, match="forgotten"):
            b.refuse_if_blocked("alice", "t1")
        with pytest.raises(ThreadBusyError, match="forgotten"):
            b.start(_run(), [])
        assert not b._try_lease(_run())  # the lease take checks it too (enqueued runs)
        b.refuse_if_blocked("bob", "t1")  # another user is not blocked
    b.refuse_if_blocked("alice", "t1")  # lifted when the forget ends
    assert b._try_lease(_run())


def test_a_thread_delete_blocks_only_that_thread_in_other_processes(
    pair: tuple[RunManager, RunManager],
) -> None:
    a, b = pair
    with a.blocking("alice", "t1"):
        with pytest.raises(ThreadBusyError):
            b.refuse_if_blocked("alice", "t1")
        b.refuse_if_blocked("alice", "t2")
        assert b._try_lease(_run("t2"))


def test_forget_me_sees_a_run_that_took_its_lease_before_the_block(
    pair: tuple[RunManager, RunManager],
) -> None:
    a, b = pair
    assert b._try_lease(_run())
    with a.blocking("alice"):
        assert a.leased_elsewhere("alice")  # the route answers 409


def test_a_live_run_whose_record_refresh_is_late_is_not_reported_interrupted(
    store: BaseStore, pair: tuple[RunManager, RunManager]
) -> None:
    a, b = pair
    run_a = _run()
    a._save(run_a)
    assert a._try_lease(run_a)
    item = store.get(runs_namespace("alice"), run_a.run_id)
    assert item is not None
    late = {**item.value, "alive_until": time.time() - 1}
    store.put(runs_namespace("alice"), run_a.run_id, late, index=False)
    seen = b.record("alice", "t1", run_a.run_id)
    assert not seen["finished"] and seen.get("error") is None
    assert [r["run_id"] for r in b.records("alice", "t1") if not r["finished"]] == [run_a.run_id]
    a._release(run_a)  # the thread lease gone too: now its process is taken for dead
    seen = b.record("alice", "t1", run_a.run_id)
    assert seen["finished"] and seen["error"]["error"] == "Interrupted"


def test_a_cancel_flag_is_read_by_key_and_only_for_its_own_user(
    store: BaseStore, pair: tuple[RunManager, RunManager]
) -> None:
    a, b = pair
    mine, theirs = _run(), _run(user="bob")
    with a._lock:
        a._runs[mine.run_id], a._runs[theirs.run_id] = mine, theirs
    store.put(CANCELS, theirs.run_id, {"at": time.time(), "user_id": "alice"}, index=False)
    b.request_cancel("alice", mine.run_id)
    flag = store.get(CANCELS, mine.run_id)
    assert flag is not None and flag.value["user_id"] == "alice"
    assert mine.stop.wait(10)  # the poller (every CANCEL_POLL_S) stopped alice's run
    time.sleep(_runs.CANCEL_POLL_S * 3)  # rounds enough for the flag naming the wrong user
    assert not theirs.stop.is_set()
    assert store.get(CANCELS, mine.run_id) is None  # a flag acted on is cleared
