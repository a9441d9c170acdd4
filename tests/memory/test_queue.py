"""The Redis job queue behind background extraction (pydocket), on a real Redis server:
de-duplication per (user, thread, message), jobs that outlive their worker, retries,
statuses shared across writers, one thread's jobs in order, and graceful stops."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from memshelf.config import Settings
from memshelf.errors import ConfigurationError, StoreError
from memshelf.llm.fake import ScriptedChatModel, rule_based_chat_model
from memshelf.memory import ExtractionJob, list_facts
from memshelf.memory import queue as q
from memshelf.memory.queue import ExtractionWorker, RedisJobWriter
from memshelf.stores import open_store
from memshelf.testing import redis_process

WAIT_S = 60.0  # generous: the cores are shared; a passing run takes well under a second


class Model:
    """The rule-based fake, with a hook on each extraction call (to count, fail or block)."""

    def __init__(self, hook: Any = None) -> None:
        self.extractions: list[str] = []
        self.lock = threading.Lock()
        base = rule_based_chat_model()
        assert base.structured is not None
        structured = base.structured

        def run(messages: list[BaseMessage], schema: Any) -> Any:
            if getattr(schema, "__name__", "") == "ExtractedFacts":
                text = str(messages[-1].content)
                with self.lock:
                    self.extractions.append(text)
                if hook is not None:
                    hook(text)
            return structured(messages, schema)

        self.chat = ScriptedChatModel(structured=run)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_url=redis_url,
        redis_prefix=f"q{uuid.uuid4().hex[:10]}",
        embeddings="fake",
        chat_model="fake",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Any]:
    with open_store(settings=settings) as opened:
        yield opened


@pytest.fixture
def writer(settings: Settings) -> Iterator[RedisJobWriter]:
    opened = RedisJobWriter.from_settings(settings)
    yield opened
    opened.close()


@contextmanager
def worker(
    settings: Settings, store: Any, model: Model, **options: Any
) -> Iterator[ExtractionWorker]:
    running = ExtractionWorker.from_settings(settings, store=store, model=model.chat, **options)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def job(
    text: str, message_id: str = "m1", thread_id: str = "t1", user_id: str = "alice"
) -> ExtractionJob:
    return ExtractionJob(user_id=user_id, thread_id=thread_id, message_id=message_id, text=text)


def facts(store: Any, user_id: str = "alice") -> list[str]:
    return sorted(i.value["text"] for i in list_facts(store, user_id))


def test_a_message_submitted_twice_from_two_processes_runs_once(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    other = RedisJobWriter.from_settings(settings)  # a second service process
    try:
        writer.submit(job("I live in Lisbon."))
        writer.submit(job("I live in Lisbon."))
        other.submit(job("I live in Lisbon."))
        assert writer.backlog().queued == 1
        model = Model()
        with worker(settings, store, model):
            assert other.wait("alice", "t1", timeout=WAIT_S)
            writer.submit(job("I live in Lisbon."))  # after it ran: still a duplicate
            assert writer.backlog().queued == 0
            assert writer.wait("alice", timeout=WAIT_S)
        assert len(model.extractions) == 1
        assert facts(store) == ["I live in Lisbon"]
        status = other.status("alice", "t1")  # the status is the same in every process
        assert (status.state, status.done_messages) == ("done", 1)
        assert [o.op for o in status.outcomes] == ["ADD"]
    finally:
        other.close()


def test_a_job_queued_with_no_worker_runs_when_one_starts(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    model = Model()
    with worker(settings, store, model):
        pass  # a worker came and went
    writer.submit(job("I keep bees."))
    writer.close()  # the process that queued it is gone too
    later = RedisJobWriter.from_settings(settings)
    try:
        assert later.status("alice", "t1").state == "pending"
        assert not later.wait("alice", "t1", timeout=0.3)
        assert not later.backlog().alive  # readiness: jobs wait and no worker is alive
        with worker(settings, store, model):
            assert later.wait("alice", "t1", timeout=WAIT_S)
        assert facts(store) == ["I keep bees"]
        assert later.status("alice", "t1").state == "done"
    finally:
        later.close()


def test_a_failing_job_is_retried_then_shows_failed_and_logs_no_user_text(
    settings: Settings, store: Any, writer: RedisJobWriter, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(text: str) -> None:
        raise RuntimeError(f"the model choked on {text!r}")

    model = Model(fail)
    caplog.set_level(logging.INFO)
    writer.submit(job("My secret is tangerine."))
    with worker(settings, store, model):
        assert writer.wait("alice", "t1", timeout=WAIT_S)
    assert len(model.extractions) == q.ATTEMPTS
    status = writer.status("alice", "t1")
    assert (status.state, status.attempts) == ("failed", q.ATTEMPTS)
    assert status.error is not None and status.error.startswith("RuntimeError")
    assert "tangerine" not in caplog.text
    assert "RuntimeError" in caplog.text
    writer.submit(job("My secret is tangerine."))  # a job that failed for good may come again
    assert writer.status("alice", "t1").state == "pending"


def test_a_retry_that_succeeds_clears_the_error(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    def fail_once(text: str) -> None:
        if len(model.extractions) == 1:
            raise TimeoutError("slow model")

    model = Model(fail_once)
    writer.submit(job("I play the cello."))
    with worker(settings, store, model):
        assert writer.wait("alice", "t1", timeout=WAIT_S)
    status = writer.status("alice", "t1")
    assert (status.state, status.error, status.attempts) == ("done", None, 0)
    assert len(model.extractions) == 2 and facts(store) == ["I play the cello"]


def test_one_threads_messages_are_extracted_in_order_one_batch_at_a_time(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    """Messages queued while the thread's batch runs wait, then go together, in order,
    although four tasks could run at once; another thread is not held up."""
    first, more_queued = threading.Event(), threading.Event()
    active: list[str] = []
    overlapped: list[str] = []
    guard = threading.Lock()

    def hook(text: str) -> None:
        with guard:
            if active and "cats" in text and any("cats" in a for a in active):
                overlapped.append(text)
            active.append(text)
        if "I own 1 cats" in text:
            first.set()
            assert more_queued.wait(WAIT_S)
        with guard:
            active.remove(text)

    model = Model(hook)
    texts = [f"I own {n} cats." for n in range(1, 6)]
    with worker(settings, store, model, concurrency=4):
        writer.submit(job(texts[0], message_id="m0"))
        assert first.wait(WAIT_S)
        for n, text in enumerate(texts[1:], start=1):
            writer.submit(job(text, message_id=f"m{n}"))
        writer.submit(job("I own a boat.", message_id="b1", thread_id="t2"))
        assert writer.wait("alice", "t2", timeout=WAIT_S)  # while t1's batch is stuck
        more_queued.set()
        assert writer.wait("alice", timeout=WAIT_S)
    in_t1 = [e for e in model.extractions if "cats" in e]
    assert len(in_t1) == 2 and not overlapped
    second = in_t1[1]
    assert [second.index(t.rstrip(".")) for t in texts[1:]] == sorted(
        second.index(t.rstrip(".")) for t in texts[1:]
    )
    status = writer.status("alice", "t1")
    assert (status.state, status.done_messages) == ("done", 5)


def test_stopping_a_worker_lets_its_running_job_finish_and_never_reruns_it(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    started, release = threading.Event(), threading.Event()

    def block(text: str) -> None:
        started.set()
        release.wait(WAIT_S)

    model = Model(block)
    running = ExtractionWorker.from_settings(settings, store=store, model=model.chat).start()
    writer.submit(job("I collect stamps."))
    assert started.wait(WAIT_S)
    assert writer.status("alice", "t1").state == "running"
    stopper = threading.Thread(target=running.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive()  # stop waits for the job it runs
    writer.submit(job("I collect coins.", message_id="m2"))  # queued while it stops
    release.set()
    stopper.join(WAIT_S)
    assert not stopper.is_alive()
    assert writer.status("alice", "t1").done_messages == 1
    assert writer.backlog().queued == 1  # handed back: the new job waits for a worker
    with worker(settings, store, model):
        assert writer.wait("alice", timeout=WAIT_S)
    assert sorted(model.extractions) == sorted(set(model.extractions))  # none ran twice
    assert len(model.extractions) == 2
    assert facts(store) == ["I collect coins", "I collect stamps"]


def test_a_task_delivered_again_after_its_job_finished_does_nothing(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    """A worker killed after a batch's end was written but before pydocket heard of it:
    the task comes back, and finds its job finished."""
    model = Model()
    runner = ExtractionWorker.from_settings(settings, store=store, model=model.chat)
    writer.submit(job("I surf."))
    ids = q._Ids.of("alice", "t1", "m1")
    assert runner._runner.drain(ids) == 0  # the first delivery
    assert runner._runner.drain(ids) == 0  # the redelivery
    assert len(model.extractions) == 1
    assert writer.wait("alice", timeout=0) and writer.status("alice", "t1").done_messages == 1
    runner._runner.r.close()


def test_waiting_forever_with_no_worker_alive_raises_a_clear_error(
    writer: RedisJobWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "NO_WORKER_S", 0.2)
    writer.submit(job("I like rain."))
    with pytest.raises(StoreError, match="memshelf worker"):
        writer.wait("alice")


def test_a_closed_writer_refuses_jobs(writer: RedisJobWriter) -> None:
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(job("I like snow."))


def test_the_queue_needs_a_redis_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisJobWriter.from_settings(Settings(data_dir=tmp_path))


def test_statuses_are_per_user_and_discarded_with_the_user(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    model = Model()
    writer.submit(job("I run marathons."))
    writer.submit(job("I run marathons.", user_id="bob"))  # same ids, another user
    with worker(settings, store, model):
        assert writer.wait("alice", timeout=WAIT_S) and writer.wait("bob", timeout=WAIT_S)
    assert len(model.extractions) == 2
    writer.discard_user("alice")
    assert writer.status("alice", "t1").state == "idle"
    assert writer.status("bob", "t1").state == "done"


def test_the_queue_uses_memshelf_redis_password_like_the_store(tmp_path: Path) -> None:
    secret = "s3cret-" + uuid.uuid4().hex[:6]
    with redis_process(extra_args=["--requirepass", secret]) as proc:
        settings = Settings(
            data_dir=tmp_path / "data",
            store_url=proc.url,
            redis_password=secret,
            embeddings="fake",
            chat_model="fake",
        )
        with open_store(settings=settings) as opened:
            queue = RedisJobWriter.from_settings(settings)
            try:
                queue.submit(job("I sail on weekends."))
                with worker(settings, opened, Model()):
                    assert queue.wait("alice", "t1", timeout=WAIT_S)
                assert facts(opened) == ["I sail on weekends"]
            finally:
                queue.close()


STUCK_WORKER = """
import time
from datetime import timedelta

from memshelf.config import Settings
from memshelf.llm.fake import ScriptedChatModel
from memshelf.memory.queue import ExtractionWorker
from memshelf.stores import open_store


def stuck(messages, schema):
    time.sleep(3600)


settings = Settings()
with open_store(settings=settings) as store:
    model = ScriptedChatModel(structured=stuck)
    ExtractionWorker.from_settings(
        settings, store=store, model=model, redelivery_timeout=timedelta(seconds=1)
    ).run()
"""


def test_a_job_whose_worker_was_killed_mid_run_is_taken_over_by_another(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    env = {
        **os.environ,
        "MEMSHELF_DATA_DIR": str(settings.data_dir),
        "MEMSHELF_STORE_URL": str(settings.store_url),
        "MEMSHELF_REDIS_PREFIX": settings.redis_prefix,
        "MEMSHELF_EMBEDDINGS": "fake",
    }
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WORKER], env=env)
    try:
        writer.submit(job("I fly kites."))
        deadline = time.monotonic() + WAIT_S
        while writer.status("alice", "t1").state != "running":
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no graceful stop, the job is left mid-run
        proc.wait()
    model = Model()
    with worker(settings, store, model, redelivery_timeout=timedelta(seconds=1)):
        assert writer.wait("alice", "t1", timeout=WAIT_S)
    assert len(model.extractions) == 1 and facts(store) == ["I fly kites"]
    assert writer.status("alice", "t1").state == "done"


def test_two_users_with_the_same_thread_and_message_ids_are_two_jobs(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    writer.submit(job("I live in Lisbon.", user_id="alice"))
    writer.submit(job("I live in Oslo.", user_id="bob"))
    assert writer.backlog().queued == 2
    assert writer.status("bob", "t1").state == "pending"
    with worker(settings, store, Model()):
        assert writer.wait("alice", "t1", timeout=WAIT_S)
        assert writer.wait("bob", "t1", timeout=WAIT_S)
    assert facts(store, "alice") == ["I live in Lisbon"]
    assert facts(store, "bob") == ["I live in Oslo"]
    assert writer.status("alice", "t1").outcomes != writer.status("bob", "t1").outcomes


class _Killed(BaseException):
    """A process killed mid-submit: not an Exception, so submit's own undo never runs."""


def _killed_before_queueing(writer: RedisJobWriter, text: str) -> None:
    """Submit, with the process 'killed' just before the task reaches pydocket."""
    real = writer._docket.add

    def die(*args: Any, **kwargs: Any) -> Any:
        writer._docket.add = real  # type: ignore[method-assign]
        raise _Killed

    writer._docket.add = die  # type: ignore[method-assign]
    with pytest.raises(_Killed):
        writer.submit(job(text))


def test_a_submit_killed_before_queueing_is_extracted_when_submitted_again(
    settings: Settings, store: Any, writer: RedisJobWriter
) -> None:
    _killed_before_queueing(writer, "I grow tomatoes.")
    model = Model()
    with worker(settings, store, model):
        writer.submit(job("I grow tomatoes."))  # the retry after the crash is not a duplicate
        assert writer.wait("alice", timeout=WAIT_S)
        writer.submit(job("I grow tomatoes."))  # once extracted, it is one
        assert writer.backlog().queued == 0
    assert len(model.extractions) == 1 and facts(store) == ["I grow tomatoes"]


def test_a_stranded_message_is_queued_again_by_a_wait_without_timeout(
    settings: Settings, store: Any, writer: RedisJobWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "REPAIR_AFTER_S", 0.0, raising=False)
    monkeypatch.setattr(q, "REPAIR_EVERY_S", 0.1, raising=False)
    monkeypatch.setattr(q, "SWEEP_EVERY_S", 3600.0, raising=False)  # only wait() repairs
    _killed_before_queueing(writer, "I play the cello.")
    with worker(settings, store, Model()):
        waiting = threading.Thread(target=writer.wait, args=("alice",), daemon=True)
        waiting.start()  # what /v1/me/forget does: no timeout
        waiting.join(WAIT_S)
        assert not waiting.is_alive()
    assert facts(store) == ["I play the cello"]


def test_a_worker_sweep_queues_a_stranded_message_again(
    settings: Settings, store: Any, writer: RedisJobWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "REPAIR_AFTER_S", 0.0, raising=False)
    monkeypatch.setattr(q, "REPAIR_EVERY_S", 3600.0, raising=False)  # only the worker repairs
    monkeypatch.setattr(q, "SWEEP_EVERY_S", 0.1, raising=False)
    _killed_before_queueing(writer, "I sail.")
    with worker(settings, store, Model()):
        assert writer.wait("alice", timeout=WAIT_S)
    assert facts(store) == ["I sail"]


def test_pydockets_records_hold_hashes_not_user_or_thread_ids(
    writer: RedisJobWriter,
) -> None:
    """pydocket pickles a task's arguments into Redis: they must not name the user."""
    writer.submit(
        job("I knit.", user_id="user-ssn-123", thread_id="thread-diary", message_id="msg-77")
    )
    stored: list[Any] = []
    for key in writer._r.scan_iter(match=f"{writer.keys.docket}*", count=1000):
        kind = writer._r.type(key)
        if kind == b"hash":
            stored.append(writer._r.hgetall(key))
        elif kind == b"stream":
            stored.append(writer._r.xrange(key))
        elif kind == b"string":
            stored.append(writer._r.get(key))
    raw = repr(stored)
    ids = q._Ids.of("user-ssn-123", "thread-diary", "msg-77")
    assert ids.job in raw  # the task is there, under its hash
    for secret in ("user-ssn-123", "thread-diary", "msg-77", "I knit"):
        assert secret not in raw
