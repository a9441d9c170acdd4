"""A thread belongs to one user, on every checkpointer memshelf runs on.

The repro of the leak (two users naming one thread) runs through ``build_agent`` on
SQLite and Redis, async on AsyncSqliteSaver and AsyncRedisSaver, and with odd ids
drawn by Hypothesis; legacy threads are adopted only by their one writer.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph

from memshelf.agent import open_agent, open_async_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.errors import ConfigurationError, MissingUserIdError, NamespaceError
from memshelf.namespaces import owned_thread_id
from memshelf.stores.sqlite import SqliteStore
from memshelf.threads import OWNER_KEY, OwnedCheckpointer, list_threads

SECRET = "My bank PIN hint is blue falcon. Keep it safe."
PROBE = "What did I just tell you about my PIN hint?"


def _config(user: str, thread: str) -> Any:
    return {"configurable": {"user_id": user, "thread_id": thread, "checkpoint_ns": ""}}


def _humans(graph: Any, user: str, thread: str) -> list[str]:
    state = graph.get_state(_config(user, thread))
    return [str(m.content) for m in state.values.get("messages", []) if m.type == "human"]


def _redis_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_url=url,
        redis_prefix="t" + uuid.uuid4().hex[:10],
        embeddings="fake:64",
        chat_model="fake",
    )


@contextmanager
def _agent_on(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    if backend == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
        with open_agent(settings=settings, tools=[]) as graph:
            yield graph
        return
    from memshelf.stores.redis import connect, drop_prefix

    url = request.getfixturevalue("redis_url")
    settings = _redis_settings(tmp_path, url)
    try:
        with open_agent(settings=settings, tools=[]) as graph:
            yield graph
    finally:
        client = connect(url)
        drop_prefix(client, settings.redis_prefix)
        client.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_same_thread_name_for_two_users_is_two_threads(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run = uuid.uuid4().hex[:6]  # RedisSaver keys are global in the shared test server
    alice, mallory = f"alice-{run}", f"mallory-{run}"
    with _agent_on(backend, tmp_path, request) as graph:
        assert isinstance(graph.checkpointer, OwnedCheckpointer)
        run_turn(graph, alice, "default", SECRET)
        before = graph.get_state(_config(alice, "default"))
        reply = run_turn(graph, mallory, "default", PROBE).reply
        assert "falcon" not in reply and "Earlier here" not in reply
        assert _humans(graph, mallory, "default") == [PROBE]
        after = graph.get_state(_config(alice, "default"))
        assert after.config == before.config and after.values == before.values
        assert _humans(graph, alice, "default") == [SECRET]
        # alice continuing her thread sees her own history, and only hers
        reply = run_turn(graph, alice, "default", PROBE).reply
        assert reply.endswith("Earlier here you said: " + SECRET)  # no turn of mallory's
        assert [t.thread_id for t in list_threads(graph.store, mallory)] == ["default"]
        with pytest.raises(MissingUserIdError, match="user_id"):
            graph.get_state({"configurable": {"thread_id": "default"}})


@asynccontextmanager
async def _async_agent_on(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    if backend == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
        async with open_async_agent(settings=settings, tools=[]) as graph:
            yield graph
        return
    from memshelf.stores.redis import connect, drop_prefix

    url = request.getfixturevalue("redis_url")
    settings = _redis_settings(tmp_path, url)
    try:
        async with open_async_agent(settings=settings, tools=[]) as graph:
            yield graph
    finally:
        client = connect(url)
        drop_prefix(client, settings.redis_prefix)
        client.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_async_savers_scope_threads_too(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run = uuid.uuid4().hex[:6]
    alice, mallory = f"alice-{run}", f"mallory-{run}"
    async with _async_agent_on(backend, tmp_path, request) as graph:
        assert isinstance(graph.checkpointer, OwnedCheckpointer)
        inner = type(graph.checkpointer.inner).__name__
        assert inner == ("AsyncSqliteSaver" if backend == "sqlite" else "AsyncRedisSaver")
        await graph.ainvoke({"messages": [HumanMessage(SECRET)]}, _config(alice, "t"))
        out = await graph.ainvoke({"messages": [HumanMessage(PROBE)]}, _config(mallory, "t"))
        assert "falcon" not in out["messages"][-1].content
        state = await graph.aget_state(_config(alice, "t"))
        assert [m.content for m in state.values["messages"] if m.type == "human"] == [SECRET]
        history = [s async for s in graph.aget_state_history(_config(mallory, "t"))]
        assert history and all(SECRET not in str(s.values.get("messages", "")) for s in history)
        assert await graph.checkpointer.adelete_user_thread(mallory, "t")
        assert not await graph.checkpointer.adelete_user_thread(mallory, "t")
        assert (await graph.aget_state(_config(alice, "t"))).values["messages"]


# Separators, percent signs, dots, unicode and ids that look empty-ish or like another pair.
ODD = (
    st.lists(st.sampled_from([*"ab:/%|.*_- \t", "é", "日", "%2E", "ms1", "\u200b"]), max_size=8)
    .map("".join)
    .filter(str.strip)
)


@settings(max_examples=300, deadline=None)
@given(ODD, ODD, ODD, ODD)
def test_owned_thread_ids_are_injective(u1: str, t1: str, u2: str, t2: str) -> None:
    same = owned_thread_id(u1, t1) == owned_thread_id(u2, t2)
    assert same == ((u1, t1) == (u2, t2))
    assert set(owned_thread_id(u1, t1)) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_%.-"
    )


def _put(saver: BaseCheckpointSaver[Any], user: str, thread: str, marker: str) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"marker": marker}
    checkpoint["channel_versions"] = {"marker": 1}
    saver.put(_config(user, thread), checkpoint, {"source": "input", "step": -1}, {"marker": 1})


def _marker(saver: BaseCheckpointSaver[Any], user: str, thread: str) -> str | None:
    found = saver.get_tuple(_config(user, thread))
    return None if found is None else found.checkpoint["channel_values"].get("marker")


@pytest.fixture(scope="module")
def sqlite_saver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnedCheckpointer]:
    conn = sqlite3.connect(tmp_path_factory.mktemp("cp") / "cp.db", check_same_thread=False)
    yield OwnedCheckpointer(SqliteSaver(conn))
    conn.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(ODD, ODD), min_size=2, max_size=5, unique=True))
def test_distinct_pairs_never_share_checkpoint_state(
    sqlite_saver: OwnedCheckpointer, pairs: list[tuple[str, str]]
) -> None:
    run = uuid.uuid4().hex
    for saver in (OwnedCheckpointer(InMemorySaver()), sqlite_saver):
        for i, (user, thread) in enumerate(pairs):
            _put(saver, user + run, thread, f"{run}-{i}")
        for i, (user, thread) in enumerate(pairs):
            assert _marker(saver, user + run, thread) == f"{run}-{i}"
            listed = list(saver.list(_config(user + run, thread)))
            assert [t.checkpoint["channel_values"]["marker"] for t in listed] == [f"{run}-{i}"]


def test_odd_ids_on_redis_saver(redis_url: str) -> None:
    from langgraph.checkpoint.redis import RedisSaver

    run = uuid.uuid4().hex[:8]
    pairs = [("a.b", "c"), ("a", "b.c"), ("a%2Eb", "c"), ("x:y", "z"), ("x", "y:z")]
    pairs += [("日本", "t|1"), ("*", "%"), ("{u}", "@t -1"), ("ms1.a", "b")]
    with RedisSaver.from_conn_string(redis_url) as inner:
        inner.setup()
        saver = OwnedCheckpointer(inner)
        for i, (user, thread) in enumerate(pairs):
            _put(saver, user + run, thread, f"m{i}")
        for i, (user, thread) in enumerate(pairs):
            assert _marker(saver, user + run, thread) == f"m{i}"
            assert saver.delete_user_thread(user + run, thread)
            assert _marker(saver, user + run, thread) is None


def test_checkpoint_with_another_owner_is_absent_and_unscoped_calls_refused() -> None:
    inner = InMemorySaver()
    saver = OwnedCheckpointer(inner)
    _put(saver, "alice", "t", "hers")
    # a checkpoint planted under alice's scoped id by someone else's code stays invisible
    planted = empty_checkpoint()
    planted["channel_values"] = {"marker": "planted"}
    planted["channel_versions"] = {"marker": 1}
    inner.put(
        {"configurable": {"thread_id": owned_thread_id("alice", "u"), "checkpoint_ns": ""}},
        planted,
        {OWNER_KEY: "mallory"},  # type: ignore[typeddict-unknown-key]
        {"marker": 1},
    )
    assert _marker(saver, "alice", "u") is None
    assert _marker(saver, "alice", "t") == "hers"
    for call in (
        lambda: saver.delete_thread("t"),
        lambda: saver.copy_thread("t", "u"),
        lambda: saver.prune(["t"]),
        lambda: saver.delete_for_runs(["r"]),
        lambda: list(saver.list(None)),
    ):
        with pytest.raises(ConfigurationError, match="without their owner"):
            call()
    with pytest.raises(MissingUserIdError):
        saver.get_tuple({"configurable": {"thread_id": "t"}})
    with pytest.raises(NamespaceError, match="thread"):
        saver.get_tuple({"configurable": {"user_id": "alice"}})
    with pytest.raises(ConfigurationError, match="already"):
        OwnedCheckpointer(saver)


def _legacy_graph(conn: sqlite3.Connection) -> Any:
    """The old wiring: a graph on a bare SqliteSaver, thread ids as given."""

    def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "ok")]}

    graph = StateGraph(MessagesState)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    return graph.compile(checkpointer=SqliteSaver(conn))


def test_legacy_threads_go_to_their_one_writer_and_shared_ones_to_nobody(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", embeddings="fake:64", chat_model="fake")
    settings.data_dir.mkdir(parents=True)
    conn = sqlite3.connect(settings.data_dir / "checkpoints.db", check_same_thread=False)
    old = _legacy_graph(conn)
    old.invoke({"messages": [("human", "alice's own words")]}, _config("alice", "mine"))
    old.invoke({"messages": [("human", "alice in default")]}, _config("alice", "default"))
    old.invoke({"messages": [("human", "mallory in default")]}, _config("mallory", "default"))
    conn.close()

    with open_agent(settings=settings, tools=[]) as graph:
        assert _humans(graph, "mallory", "mine") == []  # not mallory's: looks absent
        assert _humans(graph, "alice", "mine") == ["alice's own words"]  # adopted by its writer
        assert "Migrated" in caplog.text
        reply = run_turn(graph, "alice", "mine", "and now?").reply
        assert "alice's own words" in reply  # the history continues
        assert _humans(graph, "alice", "default") == []  # written by two users: nobody's
        assert _humans(graph, "mallory", "default") == []
    raw = sqlite3.connect(settings.data_dir / "checkpoints.db")
    legacy = {r[0] for r in raw.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    raw.close()
    assert "mine" not in legacy and "default" in legacy  # moved once; the shared one kept


def test_migrate_adopts_every_single_writer_thread_and_can_delete_shared_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = sqlite3.connect(tmp_path / "cp.db", check_same_thread=False)
    old = _legacy_graph(conn)
    old.invoke({"messages": [("human", "a1")]}, _config("alice", "one"))
    old.invoke({"messages": [("human", "a2")]}, _config("alice", "two"))
    old.invoke({"messages": [("human", "b1")]}, _config("bob", "three"))
    old.invoke({"messages": [("human", "shared a")]}, _config("alice", "shared"))
    old.invoke({"messages": [("human", "shared b")]}, _config("bob", "shared"))
    with SqliteStore(tmp_path / "s.db", index=None) as store:
        saver = OwnedCheckpointer(SqliteSaver(conn), store)
        assert list_threads(store, "alice") == []  # nothing adopted yet
        assert saver.migrate_legacy() == (3, 1, 0)
        assert sorted(t.thread_id for t in list_threads(store, "alice")) == ["one", "two"]
        assert [t.thread_id for t in list_threads(store, "bob")] == ["three"]
        assert _marker(saver, "bob", "shared") is None
        assert "shared" not in caplog.text  # nothing tells a caller the thread exists
        assert saver.migrate_legacy(delete_shared=True) == (0, 0, 1)
    rows = {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert all(r.startswith("ms1.") for r in rows) and len(rows) == 3
    conn.close()


def test_scoped_ids_used_as_names_reach_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "cp.db", check_same_thread=False)
    with SqliteStore(tmp_path / "s.db", index=None) as store:
        saver = OwnedCheckpointer(SqliteSaver(conn), store)
        _put(saver, "alice", "vault", "hers")
        for user in ("alice", "mallory"):
            assert _marker(saver, user, owned_thread_id("alice", "vault")) is None
            assert list(saver.list(_config(user, owned_thread_id("alice", "vault")))) == []
        assert _marker(saver, "alice", "vault") == "hers"  # not moved by the lookups above
        assert [t.thread_id for t in list_threads(store, "alice")] == ["vault"]
    conn.close()


def test_strict_msgpack_allowlist_reaches_the_inner_saver() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    inner = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    saver = OwnedCheckpointer(inner)
    clone = saver.with_allowlist([("tests.test_threads", "Note")])
    assert isinstance(clone, OwnedCheckpointer) and clone.inner is not inner
    assert clone.inner.serde is not inner.serde and clone._registered is saver._registered


def test_thread_registry_lists_only_the_owners_threads(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db", index=None) as store:
        saver = OwnedCheckpointer(InMemorySaver(), store)
        _put(saver, "alice", "one", "x")
        _put(saver, "alice", "two", "x")
        _put(saver, "al", "ice.one", "x")  # cannot reach ("threads", "alice")
        assert sorted(t.thread_id for t in list_threads(store, "alice")) == ["one", "two"]
        assert [t.thread_id for t in list_threads(store, "al")] == ["ice.one"]
        assert not saver.delete_user_thread("al", "one")  # another user's name: not found
        assert saver.delete_user_thread("alice", "one")
        assert [t.thread_id for t in list_threads(store, "alice")] == ["two"]
        assert list_threads(store, "nobody") == []


def _entry_points() -> tuple[set[str], set[str]]:
    """Functions in memshelf taking a thread, and functions that build a checkpointer or
    compile a graph with one (found by reading the source, so new ones cannot hide)."""
    import ast

    import memshelf

    root = Path(memshelf.__file__).parent
    takes_thread: set[str] = set()
    builds_saver: set[str] = set()
    savers = {"SqliteSaver", "AsyncSqliteSaver", "RedisSaver", "AsyncRedisSaver", "InMemorySaver"}

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = scope
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{scope}.{child.name}"
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                args = child.args.args + child.args.kwonlyargs + child.args.posonlyargs
                if any(re.search(r"(^|_)thread(_ids?)?$", a.arg) for a in args):
                    takes_thread.add(name)
            if isinstance(child, ast.Call):
                func = child.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                on = func.value if isinstance(func, ast.Attribute) else None
                if (
                    called in savers
                    or (isinstance(on, ast.Name) and on.id in savers)
                    or any(k.arg == "checkpointer" for k in child.keywords if called == "compile")
                ):
                    builds_saver.add(scope)
            visit(child, name)

    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        visit(ast.parse(path.read_text()), module)
    return takes_thread, builds_saver


# Every function that takes a thread, and the test that checks it across users (or, for
# the calls that name a thread without its owner, that it is refused).
THREAD_FUNCTIONS = {
    "memshelf.namespaces.owned_thread_id": "test_owned_thread_ids_are_injective",
    "memshelf.agent.turn.run_turn": "test_same_thread_name_for_two_users_is_two_threads",
    # run_turn's guard: its config carries the user id, so settling reads the owner's thread
    "memshelf.agent.turn.guarded_turn": "test_same_thread_name_for_two_users_is_two_threads",
    "memshelf.threads.OwnedCheckpointer.delete_user_thread": "test_odd_ids_on_redis_saver",
    "memshelf.threads.OwnedCheckpointer.adelete_user_thread": "test_async_savers_scope_threads_too",
    "memshelf.ops.threads.thread_messages": "tests/cli/test_threads_cli.py",
    "memshelf.ops.threads.delete_thread": "tests/cli/test_threads_cli.py",
    "memshelf.ops.threads._not_found": "tests/cli/test_threads_cli.py",
    "memshelf.cli.agent_cmds.ask": "tests/cli/test_threads_cli.py",
    "memshelf.cli.agent_cmds.chat": "tests/cli/test_threads_cli.py",
    "memshelf.cli.agent_cmds._chat_loop": "tests/cli/test_threads_cli.py",
    "memshelf.cli.agent_cmds._stream_reply": "tests/cli/test_threads_cli.py",
    "memshelf.cli.threads.show_cmd": "tests/cli/test_threads_cli.py",
    "memshelf.cli.threads.delete_cmd": "tests/cli/test_threads_cli.py",
    # the LangGraph-compatible threads and runs: every route is called with another
    # user's thread (and run) and must answer exactly like for a missing one
    **{
        f"memshelf.{name}": "tests/service/test_threads_runs.py"
        for name in (
            "threads.register_thread",
            "threads.registered_thread",
            "ops.threads._config",
            "ops.threads._state",
            "ops.threads.create_thread",
            "ops.threads.get_thread",
            "ops.threads.require_thread",
            "ops.threads.stream_turn",
            "ops.threads.thread_history",
            "ops.threads.thread_state",
            "ops.threads.update_thread",
            "service._runs.Run.__init__",
            "service._runs.RunManager.busy",
            "service._runs.RunManager.blocking",
            "service._runs.RunManager.leased_elsewhere",
            "service._runs.RunManager.record",
            "service._runs.RunManager.records",
            "service._runs.RunManager.refuse_if_blocked",
            "service.routes.runs._find_anywhere",
            "service._runs.RunManager.find",
            "service._runs.RunManager.of_thread",
            "service._runs.RunManager.stop_thread",
            "service.routes.runs._find",
            "service.routes.runs._start",
            "service.routes.runs.cancel_run",
            "service.routes.runs.create_run",
            "service.routes.runs.get_run",
            "service.routes.runs.join_run",
            "service.routes.runs.join_stream",
            "service.routes.runs.list_runs",
            "service.routes.runs.stream_run",
            "service.routes.runs.wait_run",
            "service.routes.threads.delete",
            "service.routes.threads.get",
            "service.routes.threads.get_history",
            "service.routes.threads.get_state",
            "service.routes.threads.update",
        )
    },
    # the memory writer keys its queue and statuses by (user, thread)
    "memshelf.memory.writer.MemoryWriter.status": "tests/memory/test_engine.py",
    "memshelf.memory.writer.MemoryWriter.wait": "tests/memory/test_engine.py",
    "memshelf.memory.writer.BackgroundWriter.status": "tests/memory/test_engine.py",
    "memshelf.memory.writer.BackgroundWriter.wait": "tests/memory/test_engine.py",
    "memshelf.memory.journal.job_key": "tests/memory/test_writer_journal.py",
}
REFUSED = "test_checkpoint_with_another_owner_is_absent_and_unscoped_calls_refused"
# the Redis job queue keys every job and status by (user, thread): two users' threads of
# one name never share a job, a status or a wait
THREAD_FUNCTIONS |= {
    f"memshelf.memory.{name}": "tests/memory/test_queue.py"
    for name in (
        "queue.RedisJobWriter.status",
        "queue.RedisJobWriter.wait",
        "_jobs._Ids.of",
        "_jobs._Keys.messages",
        "_jobs._Keys.status",
        "_jobs._Keys.thread_open",
        "queue._Runner._failed",
        "_jobs._finish",
        "queue.memshelf_extract",
    )
}
# the in-process writer's shared status and job records are keyed by (user, thread)
THREAD_FUNCTIONS |= {
    f"memshelf.memory.writer.BackgroundWriter.{name}": "tests/memory/test_writer_journal.py"
    for name in ("_busy_elsewhere", "_record", "_record_key", "_shared")
}
# the team's threads: bob's `team ask --thread t` never sees alice's, team ids encoded
THREAD_FUNCTIONS |= {
    f"memshelf.{name}": "tests/cli/test_threads_cli.py"
    for name in ("cli.team.ask", "team.graph.run_team", "team.graph.team_thread")
}
THREAD_FUNCTIONS |= {
    "memshelf.service._runs.RunManager._blocked_in_store": "tests/service/test_run_races.py",
    "memshelf.ui.threads.thread_page": "tests/ui/test_session.py",
}
# extraction status per thread: the auth matrix calls it with another user's thread id
THREAD_FUNCTIONS |= {
    f"memshelf.{name}": "tests/service/test_auth_matrix.py"
    for name in (
        "ops.memories.extraction_status",
        "ops.memories.wait_for_memories",
        "service.routes.memories.extraction",
    )
}
THREAD_FUNCTIONS |= {
    f"memshelf.threads.OwnedCheckpointer.{name}": REFUSED
    for name in ("delete_thread", "copy_thread", "prune")
    for name in (name, "a" + name)
}
# Every function that builds a checkpointer or compiles a graph with one: each hands out
# only OwnedCheckpointer (checked at run time in the tests above).
SAVER_BUILDERS = {
    "memshelf.agent.graph.default_checkpointer",
    "memshelf.agent.graph.build_agent",
    "memshelf.agent.graph.open_async_agent",
    "memshelf.team.graph.build_team",
}


def test_every_entry_point_that_takes_a_thread_is_covered() -> None:
    takes_thread, builds_saver = _entry_points()
    assert takes_thread == set(THREAD_FUNCTIONS), (
        "A function taking a thread was added or removed: scope it by owner, test it "
        "against another user's thread and list it in THREAD_FUNCTIONS."
    )
    assert builds_saver == SAVER_BUILDERS, (
        "New code builds a checkpointer or compiles a graph with one: wrap it in "
        "memshelf.threads.owned() and list it in SAVER_BUILDERS."
    )
    for test in THREAD_FUNCTIONS.values():
        assert test in globals() or (Path(__file__).parent.parent / test).is_file(), test


def test_default_checkpointer_is_owned(tmp_path: Path) -> None:
    from memshelf.agent import default_checkpointer

    settings = Settings(data_dir=tmp_path / "data")
    assert isinstance(default_checkpointer(settings), OwnedCheckpointer)
