"""Run the real ``memshelf`` command in a subprocess, and the checks every fault shares."""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.faults.registry import Fault

_PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root write a read-only file.
_FILE_CAPS = (1, 2, 3)


def as_plain_user() -> None:
    """In the child: drop root's power to ignore file permissions (the suite may run as root)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _FILE_CAPS:
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def file_size_limit(size: int) -> Callable[[], None]:
    """In the child: writes past ``size`` bytes fail with EFBIG, as on a full disk."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def memshelf(
    *args: str,
    data: Path | None,
    env: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
    timeout: float = 300,
    code: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``memshelf ARGS`` as a user runs it (``code``: Python run first, to inject a fault;
    ``data=None``: MEMSHELF_DATA_DIR unset, so the default data folder is used)."""
    entry = ["-m", "memshelf.cli"] if code is None else ["-c", _WITH_CODE.format(code=code)]
    full_env = {**os.environ, "MEMSHELF_EMBEDDINGS": "fake", **(env or {})}
    if "MEMSHELF_DATA_DIR" not in (env or {}):
        full_env.pop("MEMSHELF_DATA_DIR", None)
    if data is not None:
        full_env["MEMSHELF_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, *entry, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        preexec_fn=preexec,
        check=False,
        cwd=cwd,
    )


_WITH_CODE = """
import sys
{code}
from memshelf.cli import main
sys.argv[0] = "memshelf"
main(sys.argv[1:])
"""


def assert_clean_failure(result: subprocess.CompletedProcess[str], row: Fault) -> None:
    """The one error style: ``error: <what>. <fix>`` on stderr, exit code 2, no traceback."""
    where = f"{row.id}: rc={result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, where
    assert result.stderr.startswith("error: "), where
    assert result.returncode == 2, where
    assert "bug in memshelf" not in result.stderr, where
    assert row.sees in result.stderr, where
    assert result.stdout == "", where


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()
