"""The inspector in a real browser: headless Debian chromium driven by Playwright against
a real uvicorn (fake chat model and embedder, real SQLite). The screenshots in docs/ that
the README shows are taken here, at 1280 px and at a 390 px phone width."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memshelf.agent.graph import memory_writer
from memshelf.ops import memories as ops
from tests.service.conftest import Service
from tests.ui.conftest import needs_chromium, screenshot_dir

pytestmark = needs_chromium

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


@pytest.fixture
def page(browser: Any, sqlite_service: Service) -> Iterator[Any]:
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Any, service: Service, who: str = "alice") -> None:
    page.goto(f"{service.url}/ui/login")
    page.get_by_label("API key").fill(service.keys[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/memories")


def shoot(page: Any, name: str) -> None:
    page.screenshot(path=str(screenshot_dir() / f"ui-{name}.png"), full_page=True)


def fits(page: Any) -> bool:
    """No horizontal scrolling: the page is usable at its viewport width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def chat(service: Service, thread: str, text: str) -> None:
    """One turn through the API, then its memories written (as a user's agent would)."""
    with service.client("alice") as client:
        assert client.post("/threads", json={"thread_id": thread}).status_code == 200
        run = client.post(
            f"/threads/{thread}/runs/wait",
            json={
                "assistant_id": "agent",
                "input": {"messages": [{"role": "user", "content": text}]},
            },
        )
        assert run.status_code == 200, run.text
    ops.wait_for_memories(memory_writer(service.state.graph), "alice", timeout=30)


def test_search_history_restore_forget(page: Any, sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    key = ops.add_memory(store, "alice", "Prefers green tea in the morning").key
    ops.edit_memory(store, "alice", key, "Prefers oolong tea in the morning")
    ops.add_memory(store, "alice", "Lives in Lisbon", kind="profile")
    chat(sqlite_service, "trip", "I am planning a trip to Kyoto in April.")

    page.goto(f"{sqlite_service.url}/ui/login")
    shoot(page, "login-1280")
    log_in(page, sqlite_service)
    shoot(page, "memories-1280")

    page.get_by_label("Search by meaning").fill("oolong tea")
    page.get_by_role("button", name="Apply").click()
    results = page.locator("#results")
    results.get_by_text("found for").wait_for()
    best = results.locator(".card a").first  # search ranks; the closest memory comes first
    assert best.inner_text() == "Prefers oolong tea in the morning"
    best.click()

    page.wait_for_url(f"**/ui/memories/{key}")
    history = page.locator("#history")
    assert history.locator("li").count() == 2  # added, then reworded
    assert "Prefers green tea in the morning" in history.inner_text()
    assert page.locator("#memory-version").inner_text() == "2"
    shoot(page, "memory-1280")

    page.get_by_role("button", name="Restore version 1").click()
    page.get_by_role("status").get_by_text("Restored").wait_for()
    assert page.locator("#memory-text").inner_text() == "Prefers green tea in the morning"
    assert page.locator("#memory-version").inner_text() == "3"
    assert ops.get_memory(store, "alice", key).value["text"] == "Prefers green tea in the morning"

    page.get_by_role("link", name="Forget this memory").click()  # asks first
    assert ops.get_memory(store, "alice", key).value["text"] == "Prefers green tea in the morning"
    page.get_by_role("button", name="Yes, forget it").click()
    page.get_by_role("status").get_by_text("Forgotten").wait_for()
    shown = results.locator(".card a").all_inner_texts()
    assert "Lives in Lisbon" in shown  # the rest of the shelf stays
    assert not any("tea" in text for text in shown)
    page.get_by_label("Search by meaning").fill("green tea")
    page.get_by_role("button", name="Apply").click()
    results.get_by_text("found for “green tea”").wait_for()
    assert not any("tea" in text for text in results.locator(".card a").all_inner_texts())

    page.set_viewport_size(NARROW)
    page.goto(f"{sqlite_service.url}/ui/memories")
    assert fits(page)
    shoot(page, "memories-390")


def test_memory_text_is_shown_as_text_never_run(page: Any, sqlite_service: Service) -> None:
    hostile = "<script>window.__x=1</script>"
    key = ops.add_memory(sqlite_service.state.store, "alice", hostile).key
    log_in(page, sqlite_service)
    assert page.locator("#results").get_by_text(hostile).is_visible()
    page.goto(f"{sqlite_service.url}/ui/memories/{key}")
    assert page.locator("#memory-text").inner_text() == hostile
    assert page.evaluate("typeof window.__x") == "undefined"
    assert page.locator("script", has_text="__x").count() == 0


def test_another_users_memory_shows_not_found(page: Any, sqlite_service: Service) -> None:
    bobs = ops.add_memory(sqlite_service.state.store, "bob", "Bob keeps bees").key
    log_in(page, sqlite_service)
    answer = page.goto(f"{sqlite_service.url}/ui/memories/{bobs}")
    theirs = page.locator("main").inner_text()
    assert answer is not None and answer.status == 404
    assert "bees" not in page.content()
    missing = page.goto(f"{sqlite_service.url}/ui/memories/f_000000000000000000000000")
    assert missing is not None and missing.status == 404
    assert page.locator("main").inner_text() == theirs


def test_a_post_without_the_csrf_token_is_refused(page: Any, sqlite_service: Service) -> None:
    key = ops.add_memory(sqlite_service.state.store, "alice", "Prefers green tea").key
    log_in(page, sqlite_service)
    # the browser's own session cookie rides along; only the token is missing
    refused = page.request.post(f"{sqlite_service.url}/ui/memories/{key}/forget", form={})
    assert refused.status == 403
    assert ops.get_memory(sqlite_service.state.store, "alice", key).value["text"] == (
        "Prefers green tea"
    )


def test_forget_by_query_with_preview_then_everything(page: Any, sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    ops.add_memory(store, "alice", "Has a dog named Rex")
    kept = ops.add_memory(store, "alice", "Works as a nurse").key
    log_in(page, sqlite_service)
    page.get_by_role("link", name="Forget").click()
    page.get_by_label("What should be forgotten").fill("dog named Rex")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    preview.get_by_text("Has a dog named Rex").wait_for()
    assert ops.list_memories(store, "alice").total == 2  # a preview deletes nothing
    shoot(page, "forget-1280")
    preview.get_by_role("button", name="Forget 1 memory").click()
    page.get_by_role("status").get_by_text("Forgot 1 memory").wait_for()
    assert [i.key for i in ops.list_memories(store, "alice").items] == [kept]

    page.get_by_role("button", name="Forget everything").click()  # empty box: browser stops it
    assert ops.list_memories(store, "alice").total == 1
    page.get_by_label("Type FORGET to confirm").fill("FORGET")
    page.get_by_role("button", name="Forget everything").click()
    page.get_by_role("heading", name="Everything about you is forgotten").wait_for()
    assert ops.list_memories(store, "alice").total == 0


def test_threads_transcripts_extraction_and_export(page: Any, sqlite_service: Service) -> None:
    chat(sqlite_service, "kyoto-trip", "I am planning a trip to Kyoto in April.")
    log_in(page, sqlite_service)
    page.get_by_role("link", name="Threads").click()
    row = page.locator("#threads li", has_text="kyoto-trip")
    assert row.locator(".badge").inner_text() == "done"
    shoot(page, "threads-1280")
    row.get_by_role("link", name="kyoto-trip").click()
    page.locator("#transcript").get_by_text("I am planning a trip to Kyoto in April.").wait_for()
    assert "done" in page.locator("#extraction").inner_text()
    shoot(page, "thread-1280")

    page.get_by_role("link", name="Memories").click()
    fact = page.locator("#results").get_by_role("link", name="Kyoto")
    fact.click()
    provenance = page.locator("#provenance").inner_text()
    assert "kyoto-trip" in provenance and "extraction" in provenance
    page.set_viewport_size(NARROW)
    assert fits(page)
    shoot(page, "memory-390")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    records = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert any("Kyoto" in str(r["value"].get("text")) for r in records)


def test_keyboard_reaches_login_and_the_search(page: Any, sqlite_service: Service) -> None:
    page.goto(f"{sqlite_service.url}/ui/login")
    page.keyboard.type(sqlite_service.keys["alice"])  # the key field has focus on load
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/memories")
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert "q" in focused and "Log out" in focused


def test_htmx_updates_results_in_place_under_the_csp(page: Any, sqlite_service: Service) -> None:
    """Typing searches without a page load: the vendored htmx runs, and the page's
    Content-Security-Policy blocks nothing of it (no console errors)."""
    store = sqlite_service.state.store
    ops.add_memory(store, "alice", "Prefers oolong tea in the morning")
    ops.add_memory(store, "alice", "Lives in Lisbon", kind="profile")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    log_in(page, sqlite_service)
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    page.get_by_label("Search by meaning").press_sequentially("tea in the morning")
    page.locator("#results").get_by_text("found for “tea in the morning”").wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#results .card a").first.inner_text() == (
        "Prefers oolong tea in the morning"
    )
    assert "q=tea+in+the+morning" in page.url or "q=tea%20in%20the%20morning" in page.url
    assert problems == []
