"""``memshelf findings verify`` on a source that cannot be read, ``memshelf team ask``'s
warning when the team has nothing to research with, and ``memshelf team serve-corpus``:
the console script in a real subprocess on a real SQLite file (issue 14)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from memshelf.cli.team import source_warnings
from memshelf.config import Settings
from memshelf.stores import open_store
from memshelf.team.corpus_server import NOTES, serve_corpus
from memshelf.team.findings import Evidence, decide, propose
from memshelf.team.sources import Sources
from tests.cli.helpers import run_cli

ENV = {"MEMSHELF_EMBEDDINGS": "fake:64", "MEMSHELF_FETCH_TIMEOUT_S": "5"}
LIFESPAN = "In summer a worker honeybee lives about five to six weeks."
QUESTION = "How long does a worker honeybee live in summer?"


def _status(data: Path, key: str) -> str:
    shown = run_cli("findings", "list", "--team", "bees", "--json", data=data, **ENV)
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    return next(str(r["status"]) for r in rows if r["key"] == key)


def test_verify_on_an_unreachable_source_exits_2_and_keeps_the_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, embeddings="fake:64")
    with serve_corpus() as origin:  # the demo's corpus, served while the finding is made
        url = f"{origin}/worker-lifespan.html"
        doc = Sources.create(settings, allow_origins=[origin]).read(url)
        with open_store(settings=settings) as store:
            ev = Evidence(url, LIFESPAN, doc.sha256, doc.fetched_at)
            key = propose(store, "bees", LIFESPAN, ev, author="researcher")
            decide(store, "bees", key, "verified", by="verifier", why="quote found (exact)")
        # served, but not allowed: the hint names the flag and the origin
        closed = run_cli(
            "findings", "verify", "--team", "bees", key, "--model", "fake", data=data, **ENV
        )
        assert closed.returncode == 2, closed.stderr
        assert closed.stderr.startswith(f"error: could not re-read {url}: "), closed.stderr
        assert f"--allow-local-origin {origin}" in closed.stderr
        assert _status(data, key) == "verified"

    # allowed, but the server is gone (connection refused): unreachable, not rejected
    gone = run_cli(
        "findings", "verify", "--team", "bees", key, "--model", "fake",
        "--allow-local-origin", origin, data=data, **ENV,
    )  # fmt: skip
    assert gone.returncode == 2, gone.stderr
    assert gone.stderr.startswith(f"error: could not re-read {url}: "), gone.stderr
    assert "keeps its status" in gone.stderr and "is unreachable" in gone.stderr
    assert "Traceback" not in gone.stderr and gone.stdout == ""
    assert _status(data, key) == "verified"
    shown = run_cli("findings", "show", "--team", "bees", key, data=data, **ENV)
    assert "verify-failed by cli:" in shown.stdout and "could not be re-read" in shown.stdout


def test_team_ask_without_sources_warns_on_stderr(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bare = run_cli("team", "ask", "--team", "bees", "--model", "fake", QUESTION, data=data, **ENV)
    assert bare.returncode == 0, bare.stderr
    warnings = [line for line in bare.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, bare.stderr
    for setting in ("MEMSHELF_WEB_SEARCH", "MEMSHELF_WEB_SEARCH_URL", "MEMSHELF_NOTES_DIR"):
        assert setting in warnings[0]
    assert bare.stdout.strip()  # it still answers (from findings: none yet)

    with_notes = run_cli(
        "team", "ask", "--team", "bees", "--model", "fake", "--notes", str(NOTES), QUESTION,
        data=data, **ENV,
    )  # fmt: skip
    assert with_notes.returncode == 0 and "warning:" not in with_notes.stderr


def test_source_warnings_name_what_is_missing(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path, notes_dir=None, web_search="none")
    assert len(source_warnings(plain, None, (), QUESTION)) == 1
    assert source_warnings(plain, NOTES, (), QUESTION) == []
    assert source_warnings(plain, None, (), "What does https://example.org/bees say?") == []
    missing = source_warnings(plain, tmp_path / "nope", (), QUESTION)
    assert len(missing) == 1 and "no sources" in missing[0]
    origin = "http://127.0.0.1:8765"
    search = Settings(
        data_dir=tmp_path, web_search="tavily", web_search_url=origin, tavily_api_key="k"
    )
    local = source_warnings(search, None, (), QUESTION)
    assert len(local) == 1 and f"--allow-local-origin {origin}" in local[0]
    assert source_warnings(search, None, (origin,), QUESTION) == []
    no_key = Settings(data_dir=tmp_path, web_search="tavily", tavily_api_key=None)
    assert "TAVILY_API_KEY" in source_warnings(no_key, None, (), QUESTION)[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_corpus_serves_on_the_port_given_and_refuses_a_taken_one(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memshelf.cli", "team", "serve-corpus", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first, first
        page = httpx.get(f"http://127.0.0.1:{port}/worker-lifespan.html", timeout=10)
        assert page.status_code == 200 and "worker" in page.text.lower()
        taken = run_cli("team", "serve-corpus", "--port", str(port), data=tmp_path, **ENV)
        assert taken.returncode == 2 and f"Port {port}" in taken.stderr, taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_team_ask_with_the_fake_model_runs_end_to_end_on_the_served_corpus(
    tmp_path: Path,
) -> None:
    """`--model fake` answers the team's own structured questions (route, pick, judge), so
    a run that fetches a page researches, verifies and cites, then reuses the finding."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memshelf.cli", "team", "serve-corpus", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    origin = f"http://127.0.0.1:{port}"
    env = {
        **ENV,
        "MEMSHELF_WEB_SEARCH": "tavily",
        "MEMSHELF_WEB_SEARCH_URL": origin,
        "TAVILY_API_KEY": "offline-demo",
    }
    data = tmp_path / "data"
    try:
        assert proc.stdout is not None and origin in proc.stdout.readline()
        ask = ("team", "ask", "--team", "bees", "--model", "fake", "--allow-local-origin", origin)
        first = run_cli(*ask, QUESTION, data=data, **env)
        assert first.returncode == 0, first.stderr
        assert "Traceback" not in first.stderr and "ValidationError" not in first.stderr
        assert "[1]" in first.stdout and "week" in first.stdout.lower(), first.stdout
        verified = run_cli(
            "findings", "list", "--team", "bees", "--status", "verified", "--json",
            data=data, **env,
        )  # fmt: skip
        rows = [json.loads(line) for line in verified.stdout.splitlines()]
        assert rows and all(r["evidence"]["source"].startswith(origin) for r in rows)
        again = run_cli(*ask, QUESTION, data=data, **env)
        assert again.returncode == 0 and "[1]" in again.stdout, again.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_verify_refuses_to_undo_a_person_s_rejection_unless_forced(tmp_path: Path) -> None:
    """`findings reject --why` then `findings verify`: the passing check must not silently
    bring the finding back (issue 14); --force verifies it again, on the record."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data, embeddings="fake:64")
    with serve_corpus() as origin:
        url = f"{origin}/worker-lifespan.html"
        doc = Sources.create(settings, allow_origins=[origin]).read(url)
        with open_store(settings=settings) as store:
            ev = Evidence(url, LIFESPAN, doc.sha256, doc.fetched_at)
            key = propose(store, "bees", LIFESPAN, ev, author="researcher")
            decide(store, "bees", key, "verified", by="verifier", why="quote found (exact)")
        rejected = run_cli(
            "findings", "reject", "--team", "bees", key, "--why", "an old page", data=data, **ENV
        )  # fmt: skip
        assert rejected.returncode == 0, rejected.stderr
        verify = ("findings", "verify", "--team", "bees", key, "--model", "fake",
                  "--allow-local-origin", origin)  # fmt: skip
        refused = run_cli(*verify, data=data, **ENV)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"error: finding {key} was rejected by cli:"), (
            refused.stderr
        )
        assert refused.stderr.rstrip().endswith(": an old page. Pass --force to verify it again"), (
            refused.stderr
        )
        assert _status(data, key) == "rejected" and refused.stdout == ""
        forced = run_cli(*verify, "--force", data=data, **ENV)
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout.startswith("verified:") and _status(data, key) == "verified"


def test_an_empty_team_id_names_the_team_flag(tmp_path: Path) -> None:
    data = tmp_path / "data"
    listed = run_cli("findings", "list", "--team", "", data=data, **ENV)
    assert listed.returncode == 2
    assert "--team bees" in listed.stderr and "--user" not in listed.stderr, listed.stderr
    ask = run_cli("team", "ask", "--team", " ", "--model", "fake", QUESTION, data=data, **ENV)
    assert ask.returncode == 2 and "--team bees" in ask.stderr, ask.stderr
    assert "warning:" not in ask.stderr and ask.stderr.startswith("error: No team id given")


def test_findings_list_says_when_a_team_has_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    empty = run_cli("findings", "list", "--team", "wasps", data=data, **ENV)
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == "No findings for team wasps."
    narrowed = run_cli(
        "findings", "list", "--team", "wasps", "--status", "verified", data=data, **ENV
    )
    assert narrowed.stderr.strip() == "No verified findings for team wasps."
