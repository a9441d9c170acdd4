"""The inspector against a real service (uvicorn on 127.0.0.1, fake chat model and
embedder, real SQLite/Redis), and a real browser: Debian's chromium driven by Playwright.

Browser tests skip only when no ``chromium`` is on PATH, and say so in capitals in the
summary; ``make test`` installs it (apt-get install chromium) so they run there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import Service, service, sqlite_service

__all__ = ["service", "sqlite_service"]  # the service fixtures, shared with tests/service

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = (
    "CHROMIUM IS NOT INSTALLED: the /ui browser tests DID NOT RUN. "
    "Run `make test` (it installs Debian's chromium with apt-get) or `apt-get install chromium`."
)
ROOT = Path(__file__).resolve().parents[2]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CHROMIUM is None and terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(NO_CHROMIUM, red=True, bold=True)


# Read at import: tests/conftest.py clears every MEMSHELF_* variable before each test.
SCREENSHOTS = os.environ.get("MEMSHELF_UI_SCREENSHOTS")


def screenshot_dir() -> Path:
    """Where the browser tests put their screenshots: a temp folder, so a test run
    leaves the tree clean; `make screenshots` sets MEMSHELF_UI_SCREENSHOTS=docs to
    refresh the committed ones shown in the README."""
    folder = Path(SCREENSHOTS or Path(tempfile.gettempdir()) / "memshelf-ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_HIDDEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _HIDDEN.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@contextmanager
def logged_in(service: Service, who: str = "alice") -> Iterator[httpx.Client]:
    """An httpx client holding a UI session, logged in through the login form."""
    with httpx.Client(base_url=service.url, timeout=60) as client:
        form = client.get("/ui/login")
        answer = client.post(
            "/ui/login", data={"api_key": service.keys[who], "csrf_token": csrf_of(form.text)}
        )
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session (Debian's package, not a Playwright download)."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()
