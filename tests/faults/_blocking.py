"""``memshelf ask`` in a child whose ``fake`` model is patched to stop at a chosen moment
and drop a marker file, so that a test's signal lands exactly there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faults._cli import _WITH_CODE
from tests.faults.conftest import USER

# FAULT_AT: "answer" blocks the reply; "extract" blocks extraction; "slow-extract" makes
# extraction take 2 s. Whichever is reached first writes FAULT_MARK.
BLOCKING = """
import os, pathlib, time
import memshelf.llm.fake as fake

def _block(*args, **kwargs):
    pathlib.Path(os.environ["FAULT_MARK"]).write_text("blocked")
    time.sleep(600)

def _slow_extract(messages, schema):
    pathlib.Path(os.environ["FAULT_MARK"]).write_text("extracting")
    time.sleep(2)  # a slow model: the signal lands while it works
    return fake._structured(messages, schema)

fake.rule_based_chat_model = lambda: fake.ScriptedChatModel(
    respond=_block if os.environ["FAULT_AT"] == "answer" else fake._answer_from_facts,
    structured={"extract": _block, "slow-extract": _slow_extract}.get(
        os.environ["FAULT_AT"], fake._structured
    ),
)
"""


@contextmanager
def asking_until(
    data: Path, tmp_path: Path, message: str, at: str
) -> Iterator[subprocess.Popen[str]]:
    """``memshelf ask MESSAGE`` (thread ``t``, the patched ``fake`` model) on ``data``;
    yields the process once its model reached ``at`` (see BLOCKING), and kills it on the
    way out if it still runs."""
    mark = tmp_path / f"mark-{at}"
    mark.unlink(missing_ok=True)
    env = {
        **os.environ,
        "MEMSHELF_DATA_DIR": str(data),
        "MEMSHELF_EMBEDDINGS": "fake",
        "FAULT_MARK": str(mark),
        "FAULT_AT": at,
    }
    args = ["ask", "--user", USER, "--thread", "t", "--model", "fake", message]
    proc = subprocess.Popen(
        [sys.executable, "-c", _WITH_CODE.format(code=BLOCKING), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the turn never reached the model"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
