"""Redis faults on real servers started here: wrong database, no query engine, an
evicting policy, an unreachable, restarted or killed server.

The configuration faults run through the real ``memshelf`` command; a restart and a
kill happen while one store stays open, so they are injected in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from langgraph.store.base import PutOp

from memshelf.config import Settings
from memshelf.errors import MemshelfError, StoreUnavailableError
from memshelf.stores import open_store
from memshelf.testing import RedisProcess, free_port, redis_process
from tests.faults._cli import assert_clean_failure, lines, memshelf
from tests.faults.conftest import SEED, USER, write_export
from tests.faults.registry import fault


def test_a_redis_that_is_not_running(data: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = memshelf("memories", "list", "--user", USER, "--store", url, data=data)
    assert_clean_failure(result, fault("redis-unreachable"))
    assert "memshelf redis-server" in result.stderr


def test_a_url_naming_another_database(redis_url: str, data: Path) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/3"
    result = memshelf("memories", "add", "--user", USER, "I like tea", "--store", url, data=data)
    assert_clean_failure(result, fault("redis-wrong-db"))


def test_a_redis_without_the_query_engine(data: Path) -> None:
    with redis_process(modules=False) as server:
        result = memshelf(
            "memories", "add", "--user", USER, "I like tea", "--store", server.url, data=data
        )
    assert_clean_failure(result, fault("redis-no-query-engine"))
    assert "Redis 8" in result.stderr


def test_an_evicting_redis_is_warned_about_at_start_up(data: Path) -> None:
    policy = ["--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]
    with redis_process(extra_args=policy) as server:
        result = memshelf(
            "memories", "add", "--user", USER, "I like tea", "--store", server.url, data=data
        )
        listed = memshelf("memories", "list", "--user", USER, "--store", server.url, data=data)
    assert len(lines(result)) == 1  # the command still works...
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("warning: ")  # ...and says why memories are at risk
    assert "uses maxmemory-policy allkeys-lru" in result.stderr
    assert "noeviction" in result.stderr
    assert lines(listed)[0].endswith("I like tea")
    fault("redis-allkeys-lru")


def _settings(data: Path, prefix: str) -> Settings:
    return Settings(data_dir=data, embeddings="fake", redis_prefix=prefix)


def _restart(server: RedisProcess, sig: int) -> None:
    server.stop(sig)
    server.start()


def test_a_restarted_redis_is_reconnected_to_and_loses_nothing(tmp_path: Path) -> None:
    with redis_process(appendonly=True, appendfsync="always", directory=tmp_path) as server:
        store = open_store(server.url, settings=_settings(tmp_path / "data", "restart"))
        try:
            for i, text in enumerate(SEED):
                store.put(("memories", USER), f"k{i}", {"text": text})
            _restart(server, signal.SIGTERM)
            assert store.get(("memories", USER), "k0") is not None  # reconnects by itself
            store.put(("memories", USER), "after", {"text": "I like coffee"})
            _restart(server, signal.SIGKILL)
            found = store.search(("memories", USER), limit=10)
        finally:
            store.close()
    assert {item.value["text"] for item in found} == {*SEED, "I like coffee"}
    fault("redis-restarted")


def test_a_redis_killed_during_batches_keeps_every_acknowledged_one(tmp_path: Path) -> None:
    acknowledged: list[int] = []
    with redis_process(appendonly=True, appendfsync="always", directory=tmp_path) as server:
        store = open_store(server.url, settings=_settings(tmp_path / "data", "killed"))
        enough = threading.Event()
        error: list[BaseException] = []

        def write() -> None:
            try:
                for n in range(100_000):
                    ops = [
                        PutOp(("memories", USER), f"b{n}-{j}", {"text": f"batch {n} fact {j}"})
                        for j in range(3)
                    ]
                    store.batch(ops)
                    acknowledged.append(n)
                    if n == 30:
                        enough.set()
            except BaseException as exc:  # what the writer sees when the server dies
                error.append(exc)
                enough.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert enough.wait(120)
        server.stop(signal.SIGKILL)
        writer.join(120)
        assert not writer.is_alive()
        assert error, "the writer did not notice the server died"
        assert isinstance(error[0], StoreUnavailableError), repr(error[0])
        assert "Lost the connection to Redis" in str(error[0])
        server.start()
        try:
            keys = {item.key for item in store.search(("memories", USER), limit=100_000)}
        finally:
            store.close()
    missing = [n for n in acknowledged if not {f"b{n}-{j}" for j in range(3)} <= keys]
    assert acknowledged and missing == []
    batches = {key.split("-")[0] for key in keys}
    for name in batches:  # a batch is all or nothing, acknowledged or not
        assert {f"{name}-{j}" for j in range(3)} <= keys
    fault("redis-killed-mid-batch")


def test_two_cli_processes_import_onto_one_redis_shelf_at_once(
    redis_url: str, data: Path, tmp_path: Path
) -> None:
    files = [
        write_export(
            tmp_path / f"p{n}.json", [f"I visited town {n}-{i}" for i in range(100)], f"r{n}-"
        )
        for n in range(2)
    ]
    env = {
        **os.environ,
        "MEMSHELF_DATA_DIR": str(data),
        "MEMSHELF_EMBEDDINGS": "fake",
        "MEMSHELF_REDIS_PREFIX": "twowriters",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "memshelf.cli",
                "memories",
                "import",
                "--user",
                USER,
                str(f),
                "--store",
                redis_url,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "imported 100 facts"
    store = open_store(redis_url, settings=_settings(data, "twowriters"))
    try:
        texts = {item.value["text"] for item in store.search(("memories", USER), limit=1000)}
    finally:
        store.close()
    assert texts == {f"I visited town {n}-{i}" for n in range(2) for i in range(100)}
    fault("two-cli-writers")


@pytest.mark.parametrize("url_tail", ["/3", "/99"])
def test_the_library_refuses_other_databases_with_a_memshelf_error(
    redis_url: str, tmp_path: Path, url_tail: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + url_tail
    with pytest.raises(MemshelfError, match="memshelf needs database 0"):
        open_store(url, settings=_settings(tmp_path, "db"))
