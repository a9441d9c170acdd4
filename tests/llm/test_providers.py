"""Provider strings: parsing for every provider, and clear errors before any network call."""

from __future__ import annotations

import pytest

from memshelf.config import Settings
from memshelf.errors import ConfigurationError, ModelNotInstalledError, ProviderKeyMissingError
from memshelf.llm import DEFAULT_SPEC, ModelSpec, chat_model, parse_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("local", ModelSpec("local", "qwen2.5-coder-1.5b")),
        ("local:qwen2.5-coder-0.5b", ModelSpec("local", "qwen2.5-coder-0.5b")),
        ("anthropic:claude-sonnet-4-5", ModelSpec("anthropic", "claude-sonnet-4-5")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("ollama:llama3.1:8b", ModelSpec("ollama", "llama3.1:8b")),
        ("OpenAI: gpt-4o ", ModelSpec("openai", "gpt-4o")),
        ("google_genai:gemini-2.0-flash", ModelSpec("google_genai", "gemini-2.0-flash")),
        ("gpt-4o", ModelSpec(None, "gpt-4o")),
    ],
)
def test_parse_spec(spec: str, expected: ModelSpec) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("bad", ["", "  ", ":model", "openai:"])
def test_bad_specs(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_spec(bad)


@pytest.mark.parametrize(
    ("spec", "variable"),
    [("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"), ("openai:gpt-4o", "OPENAI_API_KEY")],
)
def test_hosted_provider_without_key_names_the_variable(spec: str, variable: str) -> None:
    with pytest.raises(ProviderKeyMissingError, match=variable):
        chat_model(spec, environ={})


def test_hosted_provider_without_package_says_what_to_install() -> None:
    with pytest.raises(ConfigurationError, match="pip install"):
        chat_model("ollama:llama3.1", environ={})


def test_default_is_local_and_missing_model_says_how_to_install(tmp_path: object) -> None:
    settings = Settings(models_dir=tmp_path)  # type: ignore[arg-type]
    assert settings.chat_model == DEFAULT_SPEC
    with pytest.raises(ModelNotInstalledError, match="memshelf models install"):
        chat_model(settings=settings)


def test_unknown_local_model() -> None:
    with pytest.raises(ConfigurationError, match=r"local:qwen2\.5-coder-1\.5b"):
        chat_model("local:nope")


def test_local_model_tool_choice_is_honoured_or_refused() -> None:
    from langchain_core.tools import tool

    from memshelf.errors import ModelError
    from memshelf.llm import LocalChatModel

    @tool
    def ping(host: str) -> str:
        """Ping a host."""
        return host

    model = LocalChatModel(model_name="x", model_path="/nonexistent.gguf")  # never loaded here
    assert model.bind_tools([ping]).kwargs["tools"][0]["function"]["name"] == "ping"  # type: ignore[attr-defined]
    assert "tools" not in model.bind_tools([ping], tool_choice="none").kwargs  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match="cannot be forced"):
        model.bind_tools([ping], tool_choice="ping")
