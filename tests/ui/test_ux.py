"""What a new user hit in the inspector (issue 15): one-click forget, lost provenance, a
lowercase FORGET, write controls for read-only keys, a chat-only key's dead end, and
unrelated search results. HTTP-level against a real service (fake models, real SQLite);
the confirm flow also in a real browser, by keyboard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from memshelf.memory.shelf import save_fact
from memshelf.memory.types import Provenance
from memshelf.ops import memories as ops
from tests.service.conftest import Service
from tests.ui.conftest import csrf_of, logged_in, needs_chromium


def key_for(service: Service, name: str, scopes: list[str]) -> str:
    """A key for alice with only ``scopes``, registered under ``name`` for logged_in."""
    service.keys[name] = service.state.keys.create("alice", scopes)[1]
    return name


def test_forget_on_a_memory_page_asks_first(sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    key = ops.add_memory(store, "alice", "Has a dog named Rex").key
    with logged_in(sqlite_service) as client:
        page = client.get(f"/ui/memories/{key}")
        assert f'action="/ui/memories/{key}/forget"' not in page.text  # no one-click delete
        assert f'href="/ui/memories/{key}/forget"' in page.text
        confirm = client.get(f"/ui/memories/{key}/forget")
        assert confirm.status_code == 200
        assert "Has a dog named Rex" in confirm.text and "cannot be undone" in confirm.text
        assert ops.get_memory(store, "alice", key).value["text"] == "Has a dog named Rex"
        gone = client.post(f"/ui/memories/{key}/forget", data={"csrf_token": csrf_of(confirm.text)})
        assert gone.status_code == 303
    assert ops.list_memories(store, "alice").total == 0


def test_provenance_survives_edit_and_restore(sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    origin = Provenance(thread_id="trip-7", message_id="msg-42", model="qwen-test")
    key = save_fact(store, "alice", "Plans a trip to Kyoto", origin)
    with logged_in(sqlite_service) as client:
        token = csrf_of(client.get(f"/ui/memories/{key}").text)
        edited = client.post(
            f"/ui/memories/{key}/edit", data={"text": "Plans a trip to Osaka", "csrf_token": token}
        )
        assert edited.status_code == 303
        restored = client.post(
            f"/ui/memories/{key}/restore", data={"version": "1", "csrf_token": token}
        )
        assert restored.status_code == 303
        page = client.get(f"/ui/memories/{key}").text
    shown = re.search(r'<dl class="facts" id="provenance">(.*?)</dl>', page, re.S)
    assert shown is not None
    origin_html = shown.group(1)
    for expected in ("extraction", "trip-7", "msg-42", "qwen-test"):
        assert expected in origin_html, expected
    assert re.search(r'id="last-change">restore by ui', origin_html)


def test_forget_everything_with_lowercase_word_shows_the_form_again(
    sqlite_service: Service,
) -> None:
    store = sqlite_service.state.store
    ops.add_memory(store, "alice", "Works as a nurse")
    with logged_in(sqlite_service) as client:
        token = csrf_of(client.get("/ui/forget").text)
        answer = client.post("/ui/forget-me", data={"confirm": "forget", "csrf_token": token})
    assert answer.status_code == 422
    assert "Not allowed" not in answer.text
    assert 'id="confirm-error"' in answer.text and "Type FORGET in capitals" in answer.text
    assert 'action="/ui/forget-me"' in answer.text  # the form is there to try again
    assert ops.list_memories(store, "alice").total == 1


def test_a_read_only_key_sees_no_write_controls(sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    key = ops.add_memory(store, "alice", "Prefers green tea").key
    ops.edit_memory(store, "alice", key, "Prefers oolong tea")
    who = key_for(sqlite_service, "read-only", ["memories:read"])
    with logged_in(sqlite_service, who) as client:
        page = client.get(f"/ui/memories/{key}").text
        for control in ("Save new version", "Forget this memory", "Restore version 1"):
            assert control not in page, control
        assert 'id="read-only"' in page and "memshelf keys create --user alice" in page
        forget = client.get("/ui/forget?query=tea").text
        assert "Prefers oolong tea" in forget  # the preview is reading
        assert 'method="post" action="/ui/forget' not in forget  # neither forget form
        refused = client.post(
            f"/ui/memories/{key}/forget",
            data={"csrf_token": csrf_of(client.get("/ui/memories").text)},
        )
    assert refused.status_code == 403
    assert 'id="missing-scope"' in refused.text and "memories:write" in refused.text
    assert 'href="/ui/memories"' in refused.text
    assert ops.get_memory(store, "alice", key).value["text"] == "Prefers oolong tea"


def test_a_chat_only_key_lands_on_threads_and_refusals_point_there(
    sqlite_service: Service,
) -> None:
    who = key_for(sqlite_service, "chat-only", ["chat"])
    with logged_in(sqlite_service, who) as client:
        landed = client.get("/ui/memories", follow_redirects=True)
        assert landed.status_code == 200
        assert landed.url.path == "/ui/threads"
        refused = client.get("/ui/forget")
    assert refused.status_code == 403
    assert "memories:read" in refused.text and 'id="missing-scope"' in refused.text
    assert 'href="/ui/threads"' in refused.text
    assert "Back to memories" not in refused.text  # no loop back onto a refusal


def test_search_hides_unrelated_memories(sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    for text in ("Prefers oolong tea in the morning", "Lives in Lisbon", "Works as a nurse"):
        ops.add_memory(store, "alice", text)
    everything = ops.search_memories(store, "alice", "oolong tea", k=20)
    assert len(everything) == 3  # ops ranks the whole shelf; the floor is the page's
    with logged_in(sqlite_service) as client:
        page = client.get("/ui/memories", params={"q": "oolong tea"}).text
    assert "Prefers oolong tea in the morning" in page
    assert "Lives in Lisbon" not in page and "Works as a nurse" not in page
    assert "1 found for" in page and "2 weaker matches hidden" in page


@pytest.fixture
def tab(browser: Any, sqlite_service: Service) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@needs_chromium
def test_forget_one_by_keyboard_cancel_then_confirm(tab: Any, sqlite_service: Service) -> None:
    store = sqlite_service.state.store
    key = ops.add_memory(store, "alice", "Has a cat named Miso").key
    tab.goto(f"{sqlite_service.url}/ui/login")
    tab.get_by_label("API key").fill(sqlite_service.keys["alice"])
    tab.keyboard.press("Enter")
    tab.wait_for_url("**/ui/memories")
    tab.goto(f"{sqlite_service.url}/ui/memories/{key}")

    tab.get_by_role("link", name="Forget this memory").focus()
    tab.keyboard.press("Enter")
    tab.get_by_role("heading", name="Forget this memory?").wait_for()
    tab.get_by_role("link", name="Cancel, keep it").focus()
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"**/ui/memories/{key}")
    assert ops.get_memory(store, "alice", key).value["text"] == "Has a cat named Miso"

    tab.get_by_role("link", name="Forget this memory").focus()
    tab.keyboard.press("Enter")
    tab.get_by_role("button", name="Yes, forget it").focus()
    tab.keyboard.press("Enter")
    tab.get_by_role("status").get_by_text("Forgotten").wait_for()
    with pytest.raises(Exception, match="no memory"):
        ops.get_memory(store, "alice", key)
