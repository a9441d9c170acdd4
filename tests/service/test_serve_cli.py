"""`memshelf serve` as a new user runs it: a missing model is one `error:` line before
uvicorn starts, and once it serves, stderr holds JSON lines only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.service.conftest import free_port, make_keys, serve_process, service_settings


def test_a_fresh_data_dir_without_models_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSHELF_")}
    env["MEMSHELF_DATA_DIR"] = str(tmp_path / "fresh")  # its models/ folder does not exist
    done = subprocess.run(
        [sys.executable, "-m", "memshelf.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "memshelf models install" in lines[0] and "MEMSHELF_MODELS_DIR" in lines[0]


def test_serve_logs_json_lines_only_with_mounted_route_prefixes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"  # named by URL: the process reads its env
    settings = service_settings(tmp_path, "sqlite", None).model_copy(update={"store_url": url})
    keys = make_keys(settings)
    log = tmp_path / "serve.log"
    with serve_process(settings, log) as served:
        headers = {"x-api-key": keys["alice"]}
        assert httpx.get(f"{served.url}/ui/login", timeout=30).status_code == 200
        assert httpx.get(f"{served.url}/v1/memories", headers=headers, timeout=30).is_success
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}\n{log.read_text()}") from None
    routes = [r.get("route") for r in records if r.get("msg") == "request"]
    assert "/ui/login" in routes and "/login" not in routes
    assert "/v1/memories" in routes
    (banner,) = [r["msg"] for r in records if str(r.get("msg")).startswith("memshelf serving")]
    assert "(store sqlite sha256:" in banner
