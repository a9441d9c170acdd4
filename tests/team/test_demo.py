"""``memshelf team demo``'s runs and checks with the deterministic fake model (the real
model runs the same path in test_team_real_llm.py): it passes when run 2 reuses run 1's
findings, and fails when run 2 researches again instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memshelf.config import Settings
from memshelf.team import nodes
from memshelf.team.demo import run_demo
from tests.team.conftest import team_fake_model, team_structured


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", embeddings="fake:64")


def test_demo_passes_when_run_two_reuses(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(_settings(tmp_path), lines.append, model=team_fake_model())
    text = "\n".join(lines)
    assert "ok     run 2 reused run 1's findings" in text
    assert "hive-tips.html" in text  # run 3 met the injection page...
    assert "finding (new)" in text and "<- http://127.0.0.1" in text


def test_demo_fails_when_run_two_researches_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nodes, "COVERED", 2.0)  # the supervisor always asks the model

    def always_research(messages: list[Any], schema: Any) -> Any:
        if schema.__name__ == "Route":
            return schema.model_validate({"next": "research"})
        return team_structured(messages, schema)

    model = team_fake_model()
    model.structured = always_research
    lines: list[str] = []
    assert not run_demo(_settings(tmp_path), lines.append, model=model)
    assert "FAILED run 2 fetched less than run 1" in "\n".join(lines)
