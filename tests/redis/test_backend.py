"""The Redis backend end to end: URLs and passwords, crashes, both agent layers, errors."""

from __future__ import annotations

import logging
import signal
import uuid
from pathlib import Path

import pytest

from memshelf import open_store
from memshelf.agent import open_agent
from memshelf.agent.turn import run_turn
from memshelf.config import Settings
from memshelf.errors import ConfigurationError, StoreError
from memshelf.memory import list_facts, save_fact
from memshelf.memory.types import Provenance
from memshelf.namespaces import memories_namespace
from memshelf.stores.redis import RedisStore, connect, drop_prefix, item_id
from memshelf.testing import redis_process

PROVENANCE = Provenance(thread_id="A", message_id="m1", source="user")


def _settings(tmp_path: Path, url: str, **extra: object) -> Settings:
    prefix = "t" + uuid.uuid4().hex[:10]
    return Settings(
        data_dir=tmp_path / "data",
        store_url=url,
        redis_prefix=prefix,
        embeddings="fake:64",
        chat_model="fake",
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.real_model
def test_open_store_on_redis_has_the_sqlite_defaults(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store_url=redis_url, redis_prefix="defaults")
    with open_store(settings=settings) as store:
        try:
            assert isinstance(store, RedisStore)
            assert store.embedder_id and store.embedder_id.startswith("local:")  # real embedder
            assert store.ttl_config and store.ttl_config["refresh_on_read"] is True
            key = save_fact(store, "sukhveer", "I deploy my apps on Fly.io", PROVENANCE)
            save_fact(store, "sukhveer", "My favourite food is ramen", PROVENANCE)
            hits = store.search(memories_namespace("sukhveer"), query="which cloud hosts my code?")
            assert hits[0].key == key and hits[0].value["text"] == "I deploy my apps on Fly.io"
            ttl_ms = store._r.pttl(store._item_key(item_id(memories_namespace("sukhveer"), key)))
            assert 89 * 86_400_000 < ttl_ms <= 90 * 86_400_000
        finally:
            store.drop()


def test_password_in_url_or_settings_and_a_clear_refusal(tmp_path: Path, caplog) -> None:
    secret = "s3cret-" + uuid.uuid4().hex[:6]
    with redis_process(extra_args=["--requirepass", secret]) as proc:
        host = f"127.0.0.1:{proc.port}/0"
        with caplog.at_level(logging.DEBUG):
            RedisStore(f"redis://:{secret}@{host}", prefix="a").close()
            RedisStore(f"redis://{host}", prefix="b", password=secret).close()
            settings = Settings(store_url=f"redis://{host}", redis_password=secret)
            open_store(settings=settings, index=None).close()
            with pytest.raises(ConfigurationError) as err:
                RedisStore(f"redis://:wrong-{secret}@{host}", prefix="c")
        assert "MEMSHELF_REDIS_PASSWORD" in str(err.value)
        assert secret not in str(err.value)
        assert "sha256:" in caplog.text  # the URL's hash is logged at start-up...
        assert secret not in caplog.text and host not in caplog.text  # ...never the URL


def test_unreachable_redis_and_missing_query_engine_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="Cannot reach Redis"):
        connect("redis://127.0.0.1:1/0")
    with redis_process(modules=False) as proc, pytest.raises(StoreError, match="no query engine"):
        RedisStore(proc.url)


def test_every_acknowledged_write_survives_sigkill_with_fsync_always(tmp_path: Path) -> None:
    from memshelf.embeddings import FakeEmbedder

    index = {"embed": FakeEmbedder(64), "dims": 64, "fields": ["text"]}
    with redis_process(appendonly=True, appendfsync="always", directory=tmp_path) as proc:
        store = RedisStore(proc.url, index=index)
        for i in range(200):
            store.put(("memories", f"user{i % 7}"), f"k{i}", {"text": f"fact number {i}"})
        store.delete(("memories", "user0"), "k0")
        proc.stop(signal.SIGKILL)  # no shutdown, no final fsync: a crash
        store.close()
        proc.start()  # same directory: Redis replays the append-only file
        store = RedisStore(proc.url, index=index)
        assert store.get(("memories", "user0"), "k0") is None
        for i in range(1, 200):
            item = store.get(("memories", f"user{i % 7}"), f"k{i}")
            assert item is not None and item.value == {"text": f"fact number {i}"}
        hits = store.search(("memories", "user3"), query="fact number 10", limit=1)
        assert hits[0].key == "k10"
        store.close()


def test_both_agent_layers_on_redis_across_threads_and_a_restart(
    redis_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, redis_url)
    user, other = "sukhveer@example.com", "{guest} | *"
    try:
        with open_agent(settings=settings, tools=[]) as graph:
            assert isinstance(graph.store, RedisStore)
            assert type(graph.checkpointer.inner).__name__ == "RedisSaver"  # scoped by user
            run_turn(graph, user, "thread A-1", "I deploy on Fly.io.")
            assert "Fly.io" in run_turn(graph, user, "thread B-2", "Where do I deploy?").reply
        with open_agent(settings=settings, tools=[]) as restarted:  # new store, new saver
            assert "Fly.io" in run_turn(restarted, user, "thread C-3", "Where do I deploy?").reply
            history = restarted.get_state(
                {"configurable": {"thread_id": "thread A-1", "user_id": user}}
            )
            assert "Fly.io" in history.values["messages"][0].content  # the thread layer survived
            stranger = run_turn(restarted, other, "thread D-4", "Where do I deploy?")
            assert stranger.recalled == [] and "Fly.io" not in stranger.reply
            assert list_facts(restarted.store, other) == []
    finally:
        client = connect(redis_url)
        drop_prefix(client, settings.redis_prefix)
        client.close()
