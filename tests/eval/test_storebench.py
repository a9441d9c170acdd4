"""`memshelf bench store` end to end on a small workload."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli


def test_bench_store_writes_rows_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    scratch = tmp_path / "tmp"  # the run's TMPDIR: whatever it creates there, it removes
    scratch.mkdir()
    result = run_cli(
        "bench",
        "store",
        "--items",
        "200,400",
        "--backend",
        "langgraph-memory,sqlite",
        "--searches",
        "20",
        "--gets",
        "20",
        "--peer-searches",
        "5",
        "--json",
        str(out),
        data=tmp_path,
        TMPDIR=str(scratch),
    )
    assert result.returncode == 0, result.stderr
    assert list(scratch.iterdir()) == []
    rows = json.loads(out.read_text())
    assert [(r["items"], r["backend"]) for r in rows] == [
        (200, "memshelf sqlite"),
        (200, "langgraph InMemoryStore"),
        (400, "memshelf sqlite"),
        (400, "langgraph InMemoryStore"),
    ]
    assert all(r["recall_at_10"] == 1.0 for r in rows)  # both search exactly
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.parametrize("run", ["bench", "concurrent"])
def test_a_failing_run_removes_its_temp_dir(
    run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memshelf.eval import storebench

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    during: list[list[Path]] = []

    def failing_load(*args: Any) -> float:
        during.append(list(scratch.iterdir()))  # the store's file is in the run's temp dir
        raise RuntimeError("injected failure")

    monkeypatch.setattr(storebench, "load", failing_load)
    with pytest.raises(RuntimeError, match="injected failure"):
        if run == "bench":
            storebench.run_bench([50], ["sqlite"], searches=5, gets=5, log=lambda _: None)
        else:
            storebench.run_concurrent("sqlite", 50, 1, 1, 0.1, log=lambda _: None)
    assert during and during[0], "the run never made its temp dir"
    assert list(scratch.iterdir()) == []


def test_bench_store_refuses_unknown_backends(tmp_path: Path) -> None:
    result = run_cli("bench", "store", "--items", "10", "--backend", "mongo", data=tmp_path)
    assert result.returncode == 2 and "unknown backend" in result.stderr


def test_bench_redis_backends_in_one_run(redis_url: str) -> None:
    from memshelf.eval.storebench import run_bench, run_concurrent

    rows = run_bench(
        [300], ["redis", "langgraph-redis"], searches=10, gets=10, peer_searches=5,
        redis_url=redis_url, log=lambda _: None,
    )  # fmt: skip
    ours, peer = rows
    assert ours["backend"] == "memshelf redis" and ours["recall_at_10"] == 1.0
    assert ours["get_misses_of_100"] == 0 and ours["bytes_per_item"] > 0
    assert peer["backend"] == "langgraph RedisStore"
    row = run_concurrent("redis", 300, 3, 2, 1.0, redis_url=redis_url, log=lambda _: None)
    assert row["errors"] == 0 and row["ops"] > 0
