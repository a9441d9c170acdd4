"""`memshelf bench store` end to end on a small workload."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import run_cli


def test_bench_store_writes_rows_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
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
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [(r["items"], r["backend"]) for r in rows] == [
        (200, "memshelf sqlite"),
        (200, "langgraph InMemoryStore"),
        (400, "memshelf sqlite"),
        (400, "langgraph InMemoryStore"),
    ]
    assert all(r["recall_at_10"] == 1.0 for r in rows)  # both search exactly
    assert out.with_suffix(".png").stat().st_size > 1000


def test_bench_store_refuses_unknown_backends(tmp_path: Path) -> None:
    result = run_cli("bench", "store", "--items", "10", "--backend", "redis", data=tmp_path)
    assert result.returncode == 2 and "Redis" in result.stderr
