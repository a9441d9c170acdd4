"""Run the console script as users do: a real subprocess with its own data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, data: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memshelf.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MEMSHELF_DATA_DIR": str(data), **env},
        timeout=timeout,
        check=False,
    )
