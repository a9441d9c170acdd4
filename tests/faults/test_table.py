"""README's "When things go wrong" table is the registry, and every row is injected."""

from __future__ import annotations

import re
from pathlib import Path

from tests.faults.registry import BEGIN, END, FAULTS, render

HERE = Path(__file__).parent
README = HERE.parents[1] / "README.md"


def test_the_readme_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README lacks the faults section markers"
    section = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert section == render(), "run `python -m tests.faults.registry` and paste it in"


def test_every_row_is_injected_by_a_test() -> None:
    used: set[str] = set()
    for path in HERE.glob("test_*.py"):
        used.update(re.findall(r'fault\(\s*"([a-z0-9-]+)"', path.read_text(encoding="utf-8")))
        used.update(
            re.findall(r'\(signal\.SIG\w+, "([a-z0-9-]+)"\)', path.read_text(encoding="utf-8"))
        )
    assert set(FAULTS) - used == set()
    assert used - set(FAULTS) == set()
