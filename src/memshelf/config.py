"""One validated Settings object, read from MEMSHELF_* variables (and a .env file).

Build it once at an edge (CLI, service, demo) and pass it down; core code never
reads the environment itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MINUTES_PER_DAY = 24 * 60


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("memshelf", appauthor=False))


class Settings(BaseSettings):
    """memshelf settings; every field maps to a MEMSHELF_<NAME> environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="MEMSHELF_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where databases and model files live.",
    )
    store_url: str | None = Field(
        default=None,
        description="Long-term store (and checkpointer): redis://host:6379/0, "
        "rediss://…, sqlite:///abs/path.db, memory://, or unset for the embedded default "
        "file in data_dir.",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password for a redis:// store URL that does not carry one.",
    )
    redis_prefix: str = Field(
        default="memshelf", description="Key prefix of memshelf's data in a shared Redis."
    )
    redis_socket_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a Redis store call waits for a reply before it retries, then "
        "fails (a stalled server must not hang every call).",
    )
    embeddings: str = Field(
        default="local",
        description="`local` (bundled all-MiniLM-L6-v2, ONNX), `fake` (tests only), or a "
        "LangChain init_embeddings string such as openai:text-embedding-3-small.",
    )
    embeddings_dims: int | None = Field(
        default=None, gt=0, description="Vector length of a non-local embedder."
    )
    memory_ttl_days: float | None = Field(
        default=90.0,
        gt=0,
        description="Default time-to-live of an item, refreshed on every read; empty = forever.",
    )
    memory_kind_ttl_days: dict[str, float | None] = Field(
        default_factory=dict,
        description='Per-kind TTL in days (JSON, e.g. {"event": 30, "profile": null}); '
        "null = never; kinds not listed use memory_ttl_days.",
    )
    extraction_debounce_s: float = Field(
        default=0.3, ge=0, description="Messages of one thread this close are extracted together."
    )
    extraction_worker: bool = Field(
        default=True,
        description="With a redis:// store, each service process also runs an extraction "
        "worker; false leaves the queued jobs to `memshelf worker` processes.",
    )
    extraction_concurrency: int = Field(
        default=2,
        ge=1,
        description="Extraction jobs one Redis extraction worker runs at once (the one in "
        "each service process, and `memshelf worker` unless --concurrency says otherwise).",
    )
    max_value_bytes: int = Field(
        default=256 * 1024, gt=0, description="Largest JSON value a put may store."
    )
    ann_min_rows: int = Field(
        default=10_000,
        ge=0,
        description="SQLite store: vectors in a namespace from which searches use an "
        "approximate (HNSW) index, rescored exactly; 0 = always exact.",
    )
    vector_cache_mb: int = Field(
        default=1024,
        ge=1,
        description="SQLite store: memory for namespaces' cached vectors, per process; past "
        "it the least recently searched are dropped (and read again when needed).",
    )
    embed_threads: int = Field(default=0, ge=0, description="ONNX threads; 0 = all cores.")
    models_dir: Path | None = Field(
        default=None, description="Where local chat models live (default: <data_dir>/models)."
    )
    chat_model: str = Field(
        default="local:qwen2.5-coder-1.5b",
        description="Provider string: local:<name>, anthropic:<model>, openai:<model>, "
        "ollama:<model>, or anything LangChain's init_chat_model accepts.",
    )
    llm_context: int = Field(default=4096, ge=512, description="Local model context (tokens).")
    llm_threads: int = Field(default=0, ge=0, description="llama.cpp threads; 0 = all cores.")
    llm_max_tokens: int = Field(default=512, gt=0, description="Longest local model answer.")
    llm_timeout: float = Field(
        default=60.0, gt=0, description="Hosted chat model: seconds per request before it fails."
    )
    llm_max_retries: int = Field(
        default=2, ge=0, description="Hosted chat model: retries of a failed request."
    )
    recall_k: int = Field(default=5, gt=0, description="Facts recalled per turn at most.")
    max_message_chars: int = Field(
        default=20_000, gt=0, description="Longest user message the agent accepts."
    )
    max_tool_rounds: int = Field(
        default=4, gt=0, description="Tool round trips per turn before the agent must answer."
    )
    notes_dir: Path | None = Field(default=None, description="Folder of notes for search_notes.")
    web_search: str = Field(default="none", description="Web search provider: none or tavily.")
    web_search_url: str | None = Field(default=None, description="Override the provider's URL.")
    tavily_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("MEMSHELF_TAVILY_API_KEY", "TAVILY_API_KEY"),
        description="Key for MEMSHELF_WEB_SEARCH=tavily.",
    )
    fetch_max_bytes: int = Field(default=1_000_000, gt=0, description="fetch_url size limit.")
    fetch_timeout_s: float = Field(default=10.0, gt=0, description="fetch_url time limit.")
    fetch_allow_private: bool = Field(
        default=False, description="Let fetch_url reach private/loopback addresses."
    )
    rate_limit_per_minute: int = Field(
        default=60,
        ge=0,
        description="Model runs one API key may start per minute, per service process "
        "(POST /threads/{id}/runs…, /runs…); 0 = no limit.",
    )
    max_request_bytes: int = Field(
        default=2 * 1024 * 1024, gt=0, description="Largest HTTP request body the service reads."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the service's JSON log lines."
    )

    @field_validator("memory_ttl_days", mode="before")
    @classmethod
    def _empty_ttl_means_forever(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("memory_kind_ttl_days", mode="after")
    @classmethod
    def _known_kinds(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        from memshelf.memory.types import KINDS

        for kind, days in value.items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
            if days is not None and days <= 0:
                raise ValueError(f"the TTL of {kind!r} must be > 0 days or null (never)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty, which would put memshelf's files in the current folder; unset "
                "MEMSHELF_DATA_DIR for the default data folder or set it to a folder"
            )
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def model_dir(self) -> Path:
        return (self.models_dir or self.data_dir / "models").expanduser()

    @property
    def default_store_path(self) -> Path:
        return self.data_dir / "memshelf.db"

    @property
    def default_ttl_minutes(self) -> float | None:
        return None if self.memory_ttl_days is None else self.memory_ttl_days * MINUTES_PER_DAY


def data_dir_origin(settings: Settings) -> str:
    """Which setting chose ``settings.data_dir``, for messages that must say what to change."""
    if "data_dir" in settings.model_fields_set:
        return "set by MEMSHELF_DATA_DIR"
    return f"the default data folder, {_default_data_dir()}; MEMSHELF_DATA_DIR changes it"


def ensure_data_dir(settings: Settings) -> Path:
    """The data folder, created if missing; a clear error naming where the path came from
    (MEMSHELF_DATA_DIR or the default) when it cannot hold memshelf's files, instead of
    a failure on some file inside it."""
    import os

    from memshelf.errors import ConfigurationError

    folder = settings.data_dir
    origin = data_dir_origin(settings)
    fix = (
        "Point MEMSHELF_DATA_DIR at a writable folder"
        if "data_dir" in settings.model_fields_set
        else "Set MEMSHELF_DATA_DIR to a writable folder"
    )
    above = next((p for p in folder.parents if p.exists()), None)
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(
            f"The data folder {folder} ({origin}) is a file, not a folder. {fix}, "
            "or move the file away."
        )
    if not folder.exists() and above is not None and not above.is_dir():
        raise ConfigurationError(
            f"The data folder {folder} ({origin}) cannot be created: {above} is a file, "
            f"not a folder. {fix}."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"The data folder {folder} ({origin}) cannot be created, so it cannot be "
            f"written ({exc.strerror or exc}). Create it (mkdir -p {folder}) and make it "
            f"writable, or {fix[0].lower()}{fix[1:]}."
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"The data folder {folder} ({origin}) cannot be written. Make it writable "
            f"(chmod u+w {folder}), or {fix[0].lower()}{fix[1:]}."
        )
    return folder


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with one clear error naming the variable at fault."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from memshelf.errors import ConfigurationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"MEMSHELF_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"Invalid setting: {problems}. Fix the variable.") from exc
    except SettingsError as exc:
        raise ConfigurationError(
            f"Invalid setting: {exc}. A dict setting such as MEMSHELF_MEMORY_KIND_TTL_DAYS "
            'takes JSON, e.g. {"event": 30, "profile": null}.'
        ) from exc


def redact(secret: str | None) -> str:
    """A short stable hash of a connection string, for logs: never the text itself."""
    if not secret:
        return "-"
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def display_url(url: str | None) -> str:
    """A store URL fit for an error message: scheme, host, port and database shown (the
    user must see which server failed), user name and password replaced by ``***``, and
    the query string (which may carry a password) dropped. Never the secret."""
    from urllib.parse import urlsplit

    if not url:
        return "-"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not even a URL: show nothing of it but its hash
        return redact(url)
    if "@" in parts.path:  # a password with a raw "/" ends the host early: all of it is suspect
        return redact(url)
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username or parts.password:
        user = "***" if parts.username else ""
        netloc = f"{user}:***@{netloc}" if parts.password else f"{user}@{netloc}"
    return f"{parts.scheme}://{netloc}{parts.path}"
