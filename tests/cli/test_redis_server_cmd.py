"""`memshelf redis-server` stops its Redis (and removes its temp dir) on SIGTERM too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from memshelf.testing import free_port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_sigterm_stops_the_server_and_cleans_up() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memshelf.cli",
            "redis-server",
            "--no-appendonly",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"redis://127.0.0.1:{port}/0" in line, line
        directory = Path(re.search(r"data in (.+)\)", line).group(1))  # type: ignore[union-attr]
        assert directory.is_dir() and _answers(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _answers(port)
        assert not directory.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
