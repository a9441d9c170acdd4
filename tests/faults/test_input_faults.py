"""Bad input from Hypothesis, through the library (SQLite and Redis) and the real command:
a clear MemshelfError / ``error:`` line or the right result, never a traceback, never a
partial write."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memshelf.agent.turn import run_turn
from memshelf.errors import MemshelfError
from memshelf.memory.guard import clean_fact
from memshelf.namespaces import owned_thread_id
from memshelf.ops.memories import add_memory, import_memories, list_memories, search_memories
from memshelf.stores import MemshelfStore
from tests.faults._cli import assert_clean_failure, memshelf
from tests.faults.conftest import SEED, USER, open_shelf, records, texts_on
from tests.faults.registry import EXAMPLES, fault


def _examples(name: str, share: int = 1) -> settings:
    """The registry's example count for ``name`` (split over ``share`` backends)."""
    return settings(
        max_examples=EXAMPLES[name] // share,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# What users paste: control characters, NUL, dots, blank-looking, RTL marks, huge.
_odd = st.sampled_from(
    ["", " ", "\t\n", "\x00", "a\x00b", ".", "..", "a.b", "\u200b", "\u202e", "\x1b[31m", "🙂"]
)
text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(max_codepoint=0x3F), max_size=20),  # controls and punctuation
    _odd,
    st.builds(lambda s, n: s * n, st.sampled_from(["x", "é", "\x01"]), st.integers(250, 20_000)),
)
_argv = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
cli_text = st.one_of(st.text(_argv, max_size=30), _odd.filter(lambda s: "\x00" not in s))


def _all_items(store: MemshelfStore) -> int:
    """Items written for users (the writer's own lease record is not one)."""
    found = store.search((), limit=100_000)
    return sum(item.namespace[0] != "extraction-writers" for item in found)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, data: Path) -> Iterator[MemshelfStore]:
    if request.param == "sqlite":
        url = str(tmp_path / "odd.db")
    else:
        url = request.getfixturevalue("redis_url")
        request.getfixturevalue("monkeypatch").setenv("MEMSHELF_REDIS_PREFIX", f"odd{id(tmp_path)}")
    with open_shelf(url, data) as opened:
        yield opened


@_examples("library-ids-and-texts", share=2)
@given(user=text, thread=text, fact=text)
def test_odd_ids_and_texts_through_the_library(
    store: MemshelfStore, user: str, thread: str, fact: str
) -> None:
    before = _all_items(store)
    with contextlib.suppress(MemshelfError):
        owned_thread_id(user, thread)
    try:
        item = add_memory(store, user, fact)
    except MemshelfError:
        assert _all_items(store) == before  # refused: nothing written
    else:
        assert item.value["text"] == clean_fact(fact)
        assert item.key in {m.key for m in list_memories(store, user).items}
    with contextlib.suppress(MemshelfError):
        search_memories(store, user, fact)
    fault("odd-ids-and-texts")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_record = st.fixed_dictionaries(
    {"value": st.fixed_dictionaries({"text": text}, optional={"kind": _json, "pinned": _json})},
    optional={"key": st.one_of(st.text(max_size=20), _json)},
)
_import = st.one_of(
    _json, st.lists(st.one_of(_record, _json), max_size=5), st.lists(_record, max_size=5)
)


@_examples("library-imports", share=2)
@given(payload=_import)
def test_imports_of_any_json_are_all_or_nothing(store: MemshelfStore, payload: Any) -> None:
    before = _all_items(store)
    try:
        count = import_memories(store, USER, payload)
    except MemshelfError:
        assert _all_items(store) == before
    else:
        assert isinstance(payload, list) and count == len(payload)
        if count:
            assert _all_items(store) > before
    fault("odd-ids-and-texts")


@pytest.mark.parametrize(
    ("content", "sees"),
    [
        (b"\xff\xfe\x00not utf-8", "Cannot read"),
        (b'{"hello": 1}', "is a JSON list of records"),
        (b"[1, 2", "Cannot read"),
        (json.dumps(records(["I like tea", ""])).encode(), "Record 1"),
        (json.dumps([{"key": "a"}]).encode(), "Record 0 needs a 'value'"),
    ],
)
def test_import_files_that_are_not_exports(
    seeded: Path, data: Path, tmp_path: Path, content: bytes, sees: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = memshelf(
        "memories", "import", "--user", USER, str(bad), "--store", str(seeded), data=data
    )
    row = fault("import-not-an-export")
    assert_clean_failure(result, dataclasses.replace(row, sees=sees))
    assert texts_on(str(seeded), data) == set(SEED)


@_examples("cli-ids-and-texts")
@given(user=cli_text, thread=cli_text, message=cli_text)
def test_odd_ids_and_messages_through_the_command(
    data: Path, tmp_path: Path, user: str, thread: str, message: str
) -> None:
    args = ["ask", "--user", user, "--thread", thread, "--model", "fake", message]
    result = memshelf(*args, data=data, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if result.returncode != 0:
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.startswith("error: "), result.stderr[-3000:]
        assert "bug in memshelf" not in result.stderr
    fault("odd-ids-and-texts")


def test_a_turn_with_an_empty_user_or_thread_is_refused_before_the_thread(
    tmp_path: Path, data: Path
) -> None:
    from memshelf.agent import open_agent
    from memshelf.llm.fake import rule_based_chat_model

    with (
        open_shelf(str(tmp_path / "s.db"), data) as store,
        open_agent(store=store, model=rule_based_chat_model(), tools=[]) as graph,
    ):
        for user, thread in [("", "t"), ("a", ""), (" ", "t"), ("a", "\t")]:
            with pytest.raises(MemshelfError):
                run_turn(graph, user, thread, "I like tea")
        assert _all_items(store) == 0
