from __future__ import annotations

from pathlib import Path

import pytest

from memshelf.config import Settings, redact
from memshelf.errors import ConfigurationError
from memshelf.stores import open_store, resolve_path


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMSHELF_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MEMSHELF_MEMORY_TTL_DAYS", "")
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.default_ttl_minutes is None
    assert Settings(memory_ttl_days=90).default_ttl_minutes == 90 * 24 * 60


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MEMSHELF_EMBEDDINGS=fake:8\n")
    assert Settings().embeddings == "fake:8"


def test_store_urls(settings: Settings, tmp_path: Path) -> None:
    assert resolve_path(None, settings) == str(settings.default_store_path)
    assert resolve_path("memory://", settings) == ":memory:"
    assert resolve_path("sqlite:////tmp/x.db", settings) == "//tmp/x.db"
    assert resolve_path("sqlite:///tmp/x.db", settings) == "/tmp/x.db"
    for bad in ["sqlite://relative.db", "postgres://u:p@h/db", "redis://localhost"]:
        with pytest.raises(ConfigurationError):
            resolve_path(bad, settings)


def test_redact_never_shows_the_secret() -> None:
    url = "redis://:hunter2@example:6379/0"
    assert "hunter2" not in redact(url) and redact(url) == redact(url) and redact(None) == "-"


def test_open_store_defaults(settings: Settings) -> None:
    fake = settings.model_copy(update={"embeddings": "fake:16"})
    with open_store("memory://", settings=fake) as store:
        assert store.ttl_config is not None
        assert store.ttl_config["default_ttl"] == 90 * 24 * 60
        assert store.ttl_config["refresh_on_read"] is True
        assert store.dims == 16
        store.put(("memories", "u"), "k", {"text": "hello"})
        assert store.search(("memories", "u"), query="hello")[0].score is not None
    with open_store("memory://", settings=fake, index=None, ttl=None) as store:
        assert store.embeddings is None and store.ttl_config is None


@pytest.mark.real_model
def test_open_store_default_is_the_embedded_file_with_local_embedder(settings: Settings) -> None:
    with open_store(settings=settings) as store:
        assert store.path == str(settings.default_store_path)
        assert store.embedder_id is not None and store.embedder_id.startswith("local:")
        store.put(("memories", "u"), "fly", {"text": "I deploy on Fly.io"})
        store.put(("memories", "u"), "food", {"text": "I love ramen"})
        assert store.search(("memories", "u"), query="where do I deploy?")[0].key == "fly"
    assert settings.default_store_path.is_file()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not json", "takes JSON"),
        ('{"evnt": 30}', "unknown kind 'evnt'"),
        ('{"event": -5}', "must be > 0"),
    ],
)
def test_bad_kind_ttl_is_one_clear_error(
    value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memshelf.config import load_settings
    from memshelf.errors import ConfigurationError

    monkeypatch.setenv("MEMSHELF_MEMORY_KIND_TTL_DAYS", value)
    with pytest.raises(ConfigurationError, match=says) as caught:
        load_settings()
    assert "MEMSHELF_MEMORY_KIND_TTL_DAYS" in str(caught.value)
    monkeypatch.setenv("MEMSHELF_MEMORY_KIND_TTL_DAYS", '{"event": 30, "profile": null}')
    assert load_settings().memory_kind_ttl_days == {"event": 30, "profile": None}
