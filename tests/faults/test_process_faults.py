"""A ``memshelf ask`` killed (SIGKILL) or stopped (SIGTERM) mid-turn or mid-extraction.

The model is the ``fake`` provider, patched in the child to block at the chosen
moment and drop a marker file, so the signal lands exactly there.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.faults._blocking import asking_until
from tests.faults._cli import lines, memshelf
from tests.faults.conftest import USER
from tests.faults.registry import fault


def _ask_and_signal(data: Path, tmp_path: Path, message: str, at: str, sig: int) -> None:
    with asking_until(data, tmp_path, message, at) as proc:
        proc.send_signal(sig)
        proc.wait(60)
    # SIGKILL ends it where it stands; SIGTERM unwinds it (exit 128 + 15), closing what it opened
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig)


def _ask(data: Path, message: str) -> list[str]:
    args = ["ask", "--user", USER, "--thread", "t", "--model", "fake", message]
    return lines(memshelf(*args, data=data))


def _thread(data: Path) -> list[str]:
    return lines(memshelf("threads", "show", "--user", USER, "t", data=data))


@pytest.mark.parametrize(
    ("sig", "row"),
    [(signal.SIGKILL, "sigkill-during-turn"), (signal.SIGTERM, "sigterm-during-turn")],
)
def test_a_turn_killed_while_the_model_answers_leaves_a_usable_thread(
    data: Path, tmp_path: Path, sig: int, row: str
) -> None:
    _ask(data, "I live in Lisbon")
    _ask_and_signal(data, tmp_path, "I have a cat named Miso", "answer", sig)
    reply = _ask(data, "Where do I live?")
    assert any("Lisbon" in line for line in reply), reply
    shown = _thread(data)
    assert shown[0] == "you> I live in Lisbon"
    assert shown[-2:] == ["you> Where do I live?", f"bot> {reply[-1]}"]
    assert shown.count("you> I have a cat named Miso") <= 1
    fault(row)


def test_an_extraction_killed_midway_runs_after_restart(data: Path, tmp_path: Path) -> None:
    _ask_and_signal(data, tmp_path, "I live in Lisbon", "extract", signal.SIGKILL)
    _ask(data, "Hello again")  # a restart, with a working model
    listed = lines(memshelf("memories", "list", "--user", USER, data=data))
    assert sum("Lisbon" in line for line in listed) == 1
    fault("sigkill-during-extraction")


def test_sigterm_during_extraction_writes_the_memories_before_exiting(
    data: Path, tmp_path: Path
) -> None:
    _ask_and_signal(data, tmp_path, "I live in Lisbon", "slow-extract", signal.SIGTERM)
    listed = lines(memshelf("memories", "list", "--user", USER, data=data))
    assert sum("Lisbon" in line for line in listed) == 1
    assert any("Lisbon" in line for line in _ask(data, "Where do I live?"))
    fault("sigterm-during-extraction")
