"""`memshelf serve` faults found before uvicorn starts: one `error:` line, not a traceback
from inside the server's start-up."""

from __future__ import annotations

from pathlib import Path

from tests.faults._cli import assert_clean_failure, memshelf
from tests.faults.registry import fault
from tests.service.conftest import free_port


def test_serve_with_a_fresh_data_dir_and_no_models(data: Path) -> None:
    result = memshelf(
        "serve",
        "--port",
        str(free_port()),
        data=data,
        env={"MEMSHELF_MODELS_DIR": str(data / "models")},
    )
    assert_clean_failure(result, fault("serve-fresh-data-dir"))
    assert "MEMSHELF_MODELS_DIR" in result.stderr
