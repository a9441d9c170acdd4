"""Forgetting a user leaves no byte of what they said: not in the SQLite files (after the
scrub), not in any Redis key or value; another user's data, scanned the same way, stays."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from memshelf.agent import memory_writer, open_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.memory import list_facts
from memshelf.ops.forget import forget_everything
from memshelf.threads import list_threads


def _tell(graph: Any, user: str, marker: str) -> None:
    run_turn(graph, user, f"thread-{marker}", f"My locker code word is {marker}.")
    run_turn(graph, user, "second", f"I keep {marker} notes in Obsidian. What is my code word?")
    assert any(marker in str(i.value) for i in list_facts(graph.store, user))


def _forget_and_check(graph: Any, alice: str, bob: str) -> None:
    report = forget_everything(graph.store, graph.checkpointer, alice, writer=memory_writer(graph))
    assert report.threads == 2 and report.memories_and_history > 0
    assert list_facts(graph.store, alice) == [] and list_threads(graph.store, alice) == []
    assert [t.thread_id for t in list_threads(graph.store, bob)]


def test_sqlite_files_hold_no_trace_of_a_forgotten_user(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
    alice_marker, bob_marker = "zqxalicemark", "zqxbobmark"
    with open_agent(settings=settings, tools=[]) as graph:
        _tell(graph, "alice", alice_marker)
        _tell(graph, "bob", bob_marker)
        _forget_and_check(graph, "alice", "bob")
    raw = b"".join(p.read_bytes() for p in sorted((tmp_path / "data").iterdir()) if p.is_file())
    assert bob_marker.encode() in raw  # the scan sees what is there
    assert alice_marker.encode() not in raw.lower()


def _redis_dump(client: Any) -> bytes:
    """Every key name and value in the server, read by type (no compressed DUMP)."""
    out = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            out += [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == "string":
            out.append(client.get(key) or b"")
        elif kind == "ReJSON-RL":
            out.append(str(client.execute_command("JSON.GET", key)).encode())
        elif kind == "list":
            out += list(client.lrange(key, 0, -1))
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += list(client.zrange(key, 0, -1))
    return b"\n".join(x if isinstance(x, bytes) else str(x).encode() for x in out)


def test_redis_holds_no_trace_of_a_forgotten_user(redis_url: str, tmp_path: Path) -> None:
    from memshelf.stores.redis import connect, drop_prefix

    run = uuid.uuid4().hex[:6]
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=redis_url,
        redis_prefix="forget" + run,
        embeddings="fake:64",
        chat_model="fake",
    )
    alice, bob = f"alice-{run}", f"bob-{run}"
    alice_marker, bob_marker = f"zqxalice{run}", f"zqxbob{run}"
    client = connect(redis_url)
    try:
        with open_agent(settings=settings, tools=[]) as graph:
            _tell(graph, alice, alice_marker)
            _tell(graph, bob, bob_marker)
            _forget_and_check(graph, alice, bob)
            dump = _redis_dump(client)
            assert bob_marker.encode() in dump
            assert alice_marker.encode() not in dump.lower()
    finally:
        drop_prefix(client, settings.redis_prefix)
        client.close()


def test_forget_user_command(tmp_path: Path) -> None:
    from tests.cli.helpers import run_cli

    env = {"MEMSHELF_CHAT_MODEL": "fake", "MEMSHELF_EMBEDDINGS": "fake:64"}
    for user, city in (("alice", "Oslo"), ("bob", "Rome")):
        told = run_cli("ask", "--user", user, f"I live in {city}.", data=tmp_path, **env)
        assert told.returncode == 0, told.stderr
    out = run_cli("forget-user", "--user", "alice", "--yes", data=tmp_path, **env)
    assert out.returncode == 0 and re.search(r"; 1 threads$", out.stdout.strip()), out.stderr
    alice = run_cli("memories", "list", "--user", "alice", data=tmp_path, **env)
    bob = run_cli("memories", "list", "--user", "bob", data=tmp_path, **env)
    assert alice.stdout == "" and "Rome" in bob.stdout
    threads = run_cli("threads", "list", "--user", "alice", data=tmp_path, **env)
    assert threads.stdout == ""
