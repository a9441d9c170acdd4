"""Consolidation with history, the background writer, recall of current facts, TTL by
kind, and forgetting that leaves no byte behind (SQLite files and Redis)."""

from __future__ import annotations

import importlib
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.store.base import SearchItem

from memshelf.embeddings import FakeEmbedder
from memshelf.errors import NotFoundError
from memshelf.llm.fake import ScriptedChatModel, rule_based_chat_model
from memshelf.memory import (
    BackgroundWriter,
    ExtractionJob,
    Fact,
    Provenance,
    consolidate,
    edit_fact,
    forget,
    history,
    list_facts,
    recall,
    restore_fact,
    save_fact,
)
from memshelf.memory.consolidate import decide
from memshelf.memory.recall import asks_about_me
from memshelf.memory.shelf import memory_ttl
from memshelf.stores.sqlite import SqliteStore

P = Provenance(thread_id="t1", message_id="m1", source="extraction", model="fake")
NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SqliteStore(
        tmp_path / "m.db", index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    ) as opened:
        yield opened


def test_supersede_keeps_the_old_fact_in_history_and_out_of_recall(store: SqliteStore) -> None:
    model = rule_based_chat_model()
    old = consolidate(store, model, "u", Fact("I live in Berlin"), P)
    new = consolidate(store, model, "u", Fact("I moved from Berlin to Lisbon"), P)
    assert (old.op, new.op, new.target) == ("ADD", "SUPERSEDE", old.key)
    current = [i.value["text"] for i in list_facts(store, "u")]
    assert current == ["I moved from Berlin to Lisbon"]
    retired = store.get(("memories", "u"), str(old.key))
    assert retired is not None and retired.value["status"] == "superseded"
    assert retired.value["superseded_by"] == new.key and retired.value["invalid_at"]
    assert [f.text for f in recall(store, "u", "Where do I live? Berlin")] == [
        "I moved from Berlin to Lisbon"
    ]
    assert len(list_facts(store, "u", include_superseded=True)) == 2
    events = history(store, "u", str(old.key))
    assert [e["op"] for e in events] == ["add", "supersede"]
    assert events[1]["before"]["status"] == "active" and events[1]["after"]["status"] == (
        "superseded"
    )
    assert events[1]["actor"] == "extraction" and events[1]["model"] == "fake"
    assert events[1]["thread_id"] == "t1" and events[1]["message_id"] == "m1"
    # restoring version 1 makes it current again, as version 3, recorded too
    restored = restore_fact(store, "u", str(old.key), 1, Provenance(source="cli"))
    assert restored["version"] == 3 and restored["status"] == "active"
    assert "I live in Berlin" in [i.value["text"] for i in list_facts(store, "u")]
    assert history(store, "u", str(old.key))[-1]["op"] == "restore"
    assert history(store, "other", str(old.key)) == []  # another user's history is empty


def test_update_and_edit_are_new_versions(store: SqliteStore) -> None:
    model = rule_based_chat_model()
    first = consolidate(store, model, "u", Fact("I play the cello"), P)
    refined = consolidate(store, model, "u", Fact("I play the cello in an orchestra"), P)
    assert refined.op == "UPDATE" and refined.key == first.key
    item = store.get(("memories", "u"), str(first.key))
    assert item is not None and item.value["version"] == 2
    assert item.value["text"] == "I play the cello in an orchestra"
    edited = edit_fact(store, "u", str(first.key), "I play the cello in the LSO", P)
    assert edited["version"] == 3
    ops = [e["op"] for e in history(store, "u", str(first.key))]
    assert ops == ["add", "update", "edit"]


def test_model_never_sees_keys_and_a_bad_target_keeps_the_fact(store: SqliteStore) -> None:
    seen: list[str] = []

    def decide(messages: list[BaseMessage], schema: Any) -> Any:
        seen.append(str(messages[-1].content))
        return schema(op="SUPERSEDE", target=7)  # a memory it was not shown

    save_fact(store, "u", "I like tea", P)
    model = ScriptedChatModel(structured=decide)
    outcome = consolidate(store, model, "u", Fact("I like green tea from Japan"), P)
    assert outcome.op == "ADD" and len(list_facts(store, "u")) == 2
    assert "1. I like tea" in seen[0] and "f_" not in seen[0]


def test_a_decision_about_an_unrelated_memory_never_overwrites_it(store: SqliteStore) -> None:
    save_fact(store, "u", "I deploy on Fly.io", P)
    model = ScriptedChatModel(structured=lambda m, schema: schema(op="UPDATE", target=1))
    outcome = consolidate(store, model, "u", Fact("I write my notes in Obsidian"), P)
    assert outcome.op == "ADD"
    assert len(list_facts(store, "u")) == 2
    changed = consolidate(store, model, "u", Fact("I moved my apps off Fly.io to Render"), P)
    assert changed.op == "SUPERSEDE"  # the same fact, but it says it changed
    save_fact(store, "u", "My cat is called Miso", P)
    lossy = consolidate(store, model, "u", Fact("My cat is 3 years old"), P)
    assert lossy.op == "ADD"  # an "update" that drops the name Miso would lose it
    assert any("Miso" in i.value["text"] for i in list_facts(store, "u"))


def test_an_update_or_noop_sharing_only_the_subject_keeps_both_facts(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Facts about a named person all share the name: a small model's UPDATE or NOOP
    against a memory that shares nothing else must not lose either fact (eval qa on
    LoCoMo: "Caroline is up for the challenge!" replaced her counseling plans). The
    real embedder finds such facts as neighbours; the hashing fake needs the cut-off
    lowered so that the model, not the cut-off, decides."""
    module = importlib.import_module("memshelf.memory.consolidate")
    monkeypatch.setattr(module, "NEIGHBOUR_MIN_SCORE", -1.0)
    save_fact(store, "u", "Caroline is keen on counseling or working in mental health", P)
    update = ScriptedChatModel(structured=lambda m, schema: schema(op="UPDATE", target=1))
    outcome = consolidate(store, update, "u", Fact("Caroline is up for the challenge"), P)
    assert outcome.op == "ADD" and outcome.by_model
    texts = {i.value["text"] for i in list_facts(store, "u")}
    assert "Caroline is keen on counseling or working in mental health" in texts
    refined = consolidate(
        store,
        update,
        "u",
        Fact("Caroline is keen on counseling or working in youth mental health"),
        P,
    )
    assert refined.op == "UPDATE"  # a refinement that keeps what it refines still updates
    noop = ScriptedChatModel(structured=lambda m, schema: schema(op="NOOP", target=1))
    save_fact(store, "w", "Melanie likes painting", P)
    kept = consolidate(store, noop, "w", Fact("Melanie painted a lake sunrise last year"), P)
    assert kept.op == "ADD" and kept.by_model and len(list_facts(store, "w")) == 2
    again = consolidate(store, noop, "w", Fact("Melanie really likes painting"), P)
    assert again.op == "NOOP"


@pytest.mark.parametrize(
    ("memory", "fact", "op", "want"),
    [
        # one shared verb of a two-word memory is not "most of it"
        ("Melanie likes painting", "Melanie likes camping", "UPDATE", "ADD"),
        ("Melanie likes painting", "Melanie likes camping", "NOOP", "ADD"),
        ("Caroline loves painting", "Caroline loves the challenge", "UPDATE", "ADD"),
        # a change word does not turn an UPDATE of an unrelated fact about the same person
        # into a SUPERSEDE (the model's own SUPERSEDE of it still stands: "switched to Linux")
        ("Caroline is keen on counseling", "Caroline left the party early", "UPDATE", "ADD"),
        # facts about different named subjects never replace each other
        ("Caroline is keen on counseling", "Melanie stopped by the bakery", "SUPERSEDE", "ADD"),
        (
            "Rust is the user's favourite language",
            "Go is the user's favourite language",
            "NOOP",
            "ADD",
        ),
        # a shared date is not shared content
        (
            "Caroline went to a support group on 2023-05-07.",
            "Caroline bought a guitar on 2023-05-07.",
            "NOOP",
            "ADD",
        ),
        (
            "Caroline went to a support group on 2023-05-07.",
            "Caroline bought a guitar on 2023-05-07.",
            "UPDATE",
            "ADD",
        ),
        # a NOOP's memory holds the fact's names
        ("The user lives in Stockholm.", "The user lives in Stockport.", "NOOP", "ADD"),
        # 5-letter stems: a party is not a partner; two-letter words say nothing
        ("The user's partner is a nurse.", "The user threw a party for a nurse.", "NOOP", "ADD"),
        ("Marie aime la danse", "Marie aime la plage", "NOOP", "ADD"),
        # what still goes through
        ("I run marathons", "The user runs marathons, usually two a year.", "UPDATE", "UPDATE"),
        (
            "Caroline lives in Boston.",
            "Now Caroline lives in Denver after moving from Boston.",
            "SUPERSEDE",
            "SUPERSEDE",
        ),
        ("Melanie has two kids.", "Both of Melanie's two kids love camping.", "UPDATE", "UPDATE"),
        (
            "The user plays the cello",
            "The user plays the cello in a community orchestra",
            "UPDATE",
            "UPDATE",
        ),
        ("The user has a bike.", "The user has a red Trek road bike.", "UPDATE", "UPDATE"),
        ("I deploy on Fly.io", "I moved my apps off Fly.io to Render", "UPDATE", "SUPERSEDE"),
        (
            "The user rents a flat in Leeds.",
            "The user bought a house in York and left Leeds.",
            "SUPERSEDE",
            "SUPERSEDE",
        ),
        ("The user uses Windows.", "The user switched to Linux.", "SUPERSEDE", "SUPERSEDE"),
        (
            "The user likes dark roast coffee.",
            "The user really likes dark roast coffee.",
            "NOOP",
            "NOOP",
        ),
    ],
)
def test_code_vets_the_models_decision(memory: str, fact: str, op: str, want: str) -> None:
    model = ScriptedChatModel(structured=lambda m, schema: schema(op=op, target=1))
    near = [SearchItem(("memories", "u"), "k", {"text": memory}, NOW, NOW, 0.9)]
    assert decide(model, Fact(fact), near)[0] == want


def test_recall_lists_the_shelf_for_what_do_you_know_and_shows_dates(
    store: SqliteStore,
) -> None:
    consolidate(store, None, "u", Fact("I deploy on Fly.io"), P)
    consolidate(store, None, "u", Fact("Bia starts school", "event", "2026-03-16"), P)
    consolidate(store, None, "u", Fact("Answer me in Rust", "instruction"), P)
    assert asks_about_me("What do you know about me?")
    assert asks_about_me("what do you remember about my work")
    assert not asks_about_me("What do you know about Rust lifetimes?")
    listed = recall(store, "u", "What do you know about me?")
    assert len(listed) == 3
    shown = {f.shown for f in listed}
    assert "Bia starts school [2026-03-16]" in shown
    assert "(the user's stated preference for your answers) Answer me in Rust" in shown


def test_ttl_by_kind_and_pinned_memories() -> None:
    assert memory_ttl({"kind": "event"}, {"event": 30}) == 30 * 24 * 60
    assert memory_ttl({"kind": "profile"}, {"profile": None}) is None
    assert memory_ttl({"kind": "event", "pinned": True}, {"event": 30}) is None
    assert repr(memory_ttl({"kind": "fact"}, {"event": 30})) == repr(
        __import__("langgraph.store.base", fromlist=["NOT_PROVIDED"]).NOT_PROVIDED
    )


def test_pinned_memory_has_no_expiry(tmp_path: Path) -> None:
    with SqliteStore(
        tmp_path / "ttl.db",
        index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]},
        ttl={"default_ttl": 60, "refresh_on_read": True},
    ) as ttl_store:
        save_fact(ttl_store, "u", "My name is Ana", P, pinned=True)
        save_fact(ttl_store, "u", "I like tea", P)
        rows = dict(
            sqlite3.connect(ttl_store.path).execute(
                "SELECT json_extract(value, '$.text'), expires_at FROM items "
                "WHERE ns LIKE '%memories%'"
            )
        )
    assert rows["My name is Ana"] is None and rows["I like tea"] is not None


def test_forget_dry_run_deletes_nothing(store: SqliteStore) -> None:
    save_fact(store, "u", "I deploy on Fly.io", P)
    assert forget(store, "u", "Fly.io deploys", dry_run=True) == ["I deploy on Fly.io"]
    assert len(list_facts(store, "u")) == 1
    key = list_facts(store, "u")[0].key
    edit_fact(store, "u", key, "I deploy on Fly.io from Lisbon", P)
    assert forget(store, "u", "Fly.io deploys") == ["I deploy on Fly.io from Lisbon"]
    assert list_facts(store, "u") == []
    assert history(store, "u", key) == []  # not even a tombstone keyed by the text's hash
    with pytest.raises(NotFoundError):
        restore_fact(store, "u", key, 1, P)


# --- the background writer ---------------------------------------------------------------


def _job(user: str, thread: str, mid: str, text: str) -> ExtractionJob:
    return ExtractionJob(user_id=user, thread_id=thread, message_id=mid, text=text)


def test_writer_coalesces_is_idempotent_and_isolates_threads(store: SqliteStore) -> None:
    model = rule_based_chat_model()
    writer = BackgroundWriter(store, model, debounce_s=0.2)
    writer.submit(_job("u", "t", "1", "I live in Oslo."))
    writer.submit(_job("u", "t", "2", "I play chess."))
    writer.submit(_job("u", "t", "1", "I live in Oslo."))  # the same job again
    assert writer.status("u", "t").state == "pending"
    assert writer.status("mallory", "t").state == "idle"  # same thread name, other user
    assert writer.wait("u", "t", timeout=10)
    status = writer.status("u", "t")
    assert status.state == "done" and status.done_messages == 2
    extraction_calls = [c for c in model.calls if "User message" in str(c[-1].content)]
    assert len(extraction_calls) == 1  # two messages, one extraction
    assert {i.value["text"] for i in list_facts(store, "u")} == {"I live in Oslo", "I play chess"}
    writer.close()


def test_writer_retries_then_reports_failure_without_raising(store: SqliteStore) -> None:
    calls = []

    def broken(messages: list[BaseMessage], schema: Any) -> Any:
        calls.append(time.monotonic())
        raise TimeoutError("provider timed out")

    writer = BackgroundWriter(
        store, ScriptedChatModel(structured=broken), debounce_s=0, retries=3, backoff_s=0.05
    )
    writer.submit(_job("u", "t", "1", "I live in Oslo."))
    assert writer.wait("u", timeout=10)
    status = writer.status("u", "t")
    assert status.state == "failed" and "provider timed out" in str(status.error)
    assert len(calls) == 3 and calls[2] - calls[1] >= calls[1] - calls[0] >= 0.04  # backoff
    writer.close()


def test_close_flushes_pending_work(store: SqliteStore) -> None:
    writer = BackgroundWriter(store, rule_based_chat_model(), debounce_s=30)
    writer.submit(_job("u", "t", "1", "I live in Oslo."))
    writer.close(timeout=10)
    assert [i.value["text"] for i in list_facts(store, "u")] == ["I live in Oslo"]
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(_job("u", "t", "2", "I play chess."))


def test_reply_does_not_wait_for_extraction(store: SqliteStore, tmp_path: Path) -> None:
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from memshelf.agent import memory_writer, open_agent
    from memshelf.config import Settings

    release = threading.Event()

    def slow(messages: list[BaseMessage], schema: Any) -> Any:
        release.wait(10)
        return rule_based_chat_model().structured(messages, schema)  # type: ignore[misc]

    model = ScriptedChatModel(respond=lambda m, k: "ok", structured=slow)
    settings = Settings(data_dir=tmp_path / "d", embeddings="fake:64", chat_model="fake")
    config = {"configurable": {"user_id": "u" + uuid.uuid4().hex[:4], "thread_id": "t"}}
    user = config["configurable"]["user_id"]
    with open_agent(
        store=store, checkpointer=InMemorySaver(), model=model, tools=[], settings=settings
    ) as graph:  # leaving it closes the agent's writer (its thread)
        start = time.perf_counter()
        out = graph.invoke({"messages": [HumanMessage("I live in Oslo.")]}, config)
        assert out["messages"][-1].content == "ok" and time.perf_counter() - start < 5
        assert memory_writer(graph).status(user, "t").state in ("pending", "running")
        release.set()
        assert memory_writer(graph).wait(user, timeout=10)
    assert [i.value["text"] for i in list_facts(store, user)] == ["I live in Oslo"]


def test_near_duplicates_must_match_names_and_numbers(store: SqliteStore) -> None:
    for old, new in [
        ("I live in Stockholm", "I live in Stockport"),
        ("My employee number is 1234567", "My employee number is 1234599"),
        ("I work at Microsoft", "I work at Micron"),
    ]:
        save_fact(store, "u", old, P)
        assert consolidate(store, None, "u", Fact(new), P).op == "ADD", new
    assert consolidate(store, None, "u", Fact("i live in stockholm!"), P).op == "NOOP"


def test_the_original_wording_of_a_reworded_memory_is_a_new_memory(store: SqliteStore) -> None:
    key = save_fact(store, "u", "I have a cat", P)
    edit_fact(store, "u", key, "I have a dog named Rex", P)
    again = save_fact(store, "u", "I have a cat", P)
    assert again != key
    texts = {i.value["text"] for i in list_facts(store, "u")}
    assert texts == {"I have a cat", "I have a dog named Rex"}


def test_now_or_until_do_not_let_an_update_retire_another_fact(store: SqliteStore) -> None:
    save_fact(store, "u", "My cat Miso is 3 years old", P)
    model = ScriptedChatModel(structured=lambda m, schema: schema(op="UPDATE", target=1))
    outcome = consolidate(store, model, "u", Fact("My cat now eats only wet food"), P)
    assert outcome.op == "ADD" and len(list_facts(store, "u")) == 2


def test_a_failing_message_does_not_take_later_ones_down(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    def picky(messages: list[BaseMessage], schema: Any) -> Any:
        if "POISON" in str(messages[-1].content):
            raise ValueError("could not parse: the user said POISON secret-words")
        return rule_based_chat_model().structured(messages, schema)  # type: ignore[misc]

    model = ScriptedChatModel(structured=picky)
    writer = BackgroundWriter(store, model, debounce_s=0.2, retries=2, backoff_s=0.3)
    writer.submit(_job("u", "t", "1", "I say POISON now."))
    time.sleep(0.25)  # the first batch is running or failed once
    writer.submit(_job("u", "t", "2", "I play chess."))
    assert writer.wait("u", "t", timeout=15)
    assert [i.value["text"] for i in list_facts(store, "u")] == ["I play chess"]
    assert "secret-words" not in caplog.text and "ValueError" in caplog.text
    writer.submit(_job("u", "t", "1", "I say POISON now."))  # a dropped job may come again
    assert writer.status("u", "t").state in ("pending", "running")
    writer.close(timeout=15)


def test_a_dead_worker_is_replaced(store: SqliteStore) -> None:
    calls = []

    def dies_once(messages: list[BaseMessage], schema: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit("worker killed")
        return rule_based_chat_model().structured(messages, schema)  # type: ignore[misc]

    writer = BackgroundWriter(store, ScriptedChatModel(structured=dies_once), debounce_s=0)
    writer.submit(_job("u", "t", "1", "I live in Oslo."))
    assert writer.wait("u", timeout=10)
    assert writer.status("u", "t").state == "failed"
    writer.submit(_job("u", "t", "2", "I play chess."))
    assert writer.wait("u", timeout=10)
    assert [i.value["text"] for i in list_facts(store, "u")] == ["I play chess"]
    writer.close(timeout=10)


def test_history_of_an_expired_memory_is_pruned(tmp_path: Path) -> None:
    from memshelf.memory.shelf import prune_history

    with SqliteStore(
        tmp_path / "ttl.db",
        index={"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]},
        ttl={"default_ttl": 0.01, "refresh_on_read": True},
    ) as ttl_store:
        gone = save_fact(ttl_store, "u", "I collect Zorbulax typewriters", P)
        kept = save_fact(ttl_store, "u", "I keep this one", P, pinned=True)
        forget(ttl_store, "v", "nothing")  # another user's empty shelf is fine
        time.sleep(1.0)
        ttl_store.sweep_ttl()
        assert prune_history(ttl_store) == 1
        assert history(ttl_store, "u", gone) == [] and len(history(ttl_store, "u", kept)) == 1
