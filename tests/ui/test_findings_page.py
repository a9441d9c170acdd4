"""The inspector's read-only findings page over HTTP, on SQLite and Redis: the key's own
teams only (another team is the same not-found page as a missing one), every field shown
and escaped, and a source link only for a web address."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from memshelf.ops import findings as ops
from memshelf.team.findings import Cause, Evidence
from tests.service.conftest import TEAMS, Service
from tests.ui.conftest import logged_in, needs_chromium
from tests.ui.test_browser import NARROW, fits, log_in, page, shoot

__all__ = ["page"]  # the browser page fixture, shared with test_browser.py

ALPHA, BETA = TEAMS["alice"], TEAMS["bob"]
SCRIPT = "<script>alert('claim')</script> Bees dance."


def test_findings_page_shows_the_keys_team_escaped(service: Service) -> None:
    store = service.state.store
    hostile = ops.propose_finding(
        store,
        ALPHA,
        SCRIPT,
        Evidence("javascript:alert(1)", "<img src=x onerror=alert(1)>", "", "2026-01-02T03:04:05"),
        by="researcher",
        cause=Cause(user_id="alice"),
    )
    plain = ops.propose_finding(
        store,
        ALPHA,
        "Worker bees live about six weeks in summer.",
        Evidence("https://example.org/bees", "live about six weeks", "", "2026-01-02T03:04:05"),
        by="researcher",
    )
    ops.reject(store, ALPHA, plain, by="cli:carol", why="a single source & no date")
    ops.propose_finding(
        store, BETA, "Bob's team secret claim.", Evidence("note:b", "q", "", ""), by="x"
    )

    with logged_in(service, "alice") as alice:
        start = alice.get("/ui/memories")
        assert 'href="/ui/findings"' in start.text  # the nav link, for a key with a team
        hop = alice.get("/ui/findings")
        assert (
            hop.status_code == 303
            and hop.headers["location"] == f"/ui/findings/{quote(ALPHA, safe='')}"
        )
        page = alice.get(hop.headers["location"])
        assert page.status_code == 200
        html = page.text
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;claim&#39;)" in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'href="javascript:' not in html and "javascript:alert(1)</span>" in html
        assert 'href="https://example.org/bees"' in html and "live about six weeks" in html
        assert "rejected by" in html and "cli:carol" in html
        assert "a single source &amp; no date" in html
        assert "(asked by alice)" in html and "researcher" in html
        assert f'id="finding-{hostile}"' in html and f'id="finding-{plain}"' in html
        assert "Bob&#39;s team secret" not in html

        only = alice.get(f"/ui/findings/{quote(ALPHA, safe='')}", params={"status": "rejected"})
        assert f'id="finding-{plain}"' in only.text and f'id="finding-{hostile}"' not in only.text

        theirs = alice.get(f"/ui/findings/{quote(BETA, safe='')}")
        missing = alice.get("/ui/findings/no-such-team")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.text == missing.text and "secret" not in theirs.text


def test_no_team_no_findings(sqlite_service: Service) -> None:
    sqlite_service.keys["dave"] = sqlite_service.state.keys.create("dave")[1]
    sqlite_service.keys["erin"] = sqlite_service.state.keys.create(
        "erin", ["findings:read"], teams=[ALPHA, "gamma"]
    )[1]
    with logged_in(sqlite_service, "dave") as dave:
        assert 'href="/ui/findings"' not in dave.get("/ui/memories").text
        assert dave.get("/ui/findings").status_code == 403  # no findings:read scope
    with logged_in(sqlite_service, "erin") as erin:
        listed = erin.get("/ui/findings")
        assert listed.status_code == 200
        assert f'href="/ui/findings/{quote(ALPHA, safe="")}"' in listed.text
        assert 'href="/ui/findings/gamma"' in listed.text


@needs_chromium
def test_findings_page_in_a_browser(page: Any, sqlite_service: Service) -> None:
    """Reached from the navigation by keyboard-free clicks, readable at 1280 px and 390 px,
    a hostile claim shown as text and never run."""
    hostile = "<script>window.__f=1</script> Drones have no sting."
    store = sqlite_service.state.store
    ops.propose_finding(
        store, ALPHA, hostile, Evidence("https://example.org/drones", "no sting", "", ""), by="x"
    )
    log_in(page, sqlite_service)
    page.get_by_role("link", name="Findings").click()
    page.wait_for_url(f"**/ui/findings/{quote(ALPHA, safe='')}")
    assert page.locator("#findings .claim").inner_text() == hostile
    assert page.evaluate("typeof window.__f") == "undefined"
    assert page.locator("#findings a.source").get_attribute("href") == "https://example.org/drones"
    assert fits(page)
    shoot(page, "findings-1280")
    page.set_viewport_size(NARROW)
    assert fits(page)
