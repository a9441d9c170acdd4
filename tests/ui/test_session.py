"""The inspector's session and CSRF rules over plain HTTP, on SQLite and Redis: the
login cookie's flags, no key in any page, CSRF on every POST, scopes, revocation, and
another user's memory answering exactly like a missing one."""

from __future__ import annotations

import hashlib
import secrets
import time
import tomllib

import httpx
import pytest

from memshelf.memory.writer import ThreadStatus
from memshelf.ops import memories as ops
from memshelf.ops.forget import forget_everything
from memshelf.ui import threads as ui_threads
from memshelf.ui.render import HERE, HTMX_FILE
from memshelf.ui.session import SESSION_COOKIE, SESSIONS_NAMESPACE
from tests.service.conftest import Service
from tests.ui.conftest import ROOT, csrf_of, logged_in

HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_vendored_htmx_is_the_pinned_release() -> None:
    data = (HERE / "static" / HTMX_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert HTMX_SHA256 in (HERE / "static" / "VENDORED.md").read_text()


def test_login_sets_a_strict_httponly_cookie_and_never_shows_the_key(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        assert client.get("/ui/memories").headers["location"] == "/ui/login"
        form = client.get("/ui/login")
        answer = client.post(
            "/ui/login",
            data={"api_key": service.keys["alice"], "csrf_token": csrf_of(form.text)},
        )
        assert answer.status_code == 303
        cookie = next(
            v for v in answer.headers.get_list("set-cookie") if v.startswith("memshelf_ui=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/ui"} <= flags
        assert "secure" not in flags  # plain http on loopback; https adds it
        page = client.get("/ui/memories")
        assert page.status_code == 200 and "alice" in page.text
        assert service.keys["alice"] not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_bad_key_or_a_forged_login_form_gets_no_session(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as client:
        token = csrf_of(client.get("/ui/login").text)
        bad = client.post("/ui/login", data={"api_key": "msk_nope_nope", "csrf_token": token})
        assert bad.status_code == 401 and "not valid" in bad.text
        revoked = client.post(
            "/ui/login", data={"api_key": service.keys["revoked"], "csrf_token": token}
        )
        assert revoked.status_code == 401
        forged = client.post(
            "/ui/login", data={"api_key": service.keys["alice"], "csrf_token": "guess"}
        )
        assert forged.status_code == 403
        assert "memshelf_ui=" not in " ".join(forged.headers.get_list("set-cookie"))


def test_every_post_needs_the_sessions_csrf_token(service: Service) -> None:
    key = ops.add_memory(service.state.store, "alice", "Prefers green tea").key
    with logged_in(service) as client:
        token = csrf_of(client.get(f"/ui/memories/{key}").text)
        posts = [
            (f"/ui/memories/{key}/forget", {}),
            (f"/ui/memories/{key}/edit", {"text": "Prefers black tea"}),
            (f"/ui/memories/{key}/restore", {"version": "1"}),
            ("/ui/forget", {"query": "tea", "keys": key}),
            ("/ui/forget-me", {"confirm": "FORGET"}),
            ("/ui/logout", {}),
        ]
        for path, data in posts:
            for sent in ({}, {"csrf_token": "0" * 64}):
                refused = client.post(path, data={**data, **sent})
                assert refused.status_code == 403, (path, sent, refused.status_code)
                assert "security token" in refused.text
        assert ops.get_memory(service.state.store, "alice", key).value["text"] == (
            "Prefers green tea"
        )
        # the header htmx sends is accepted in place of the form field
        done = client.post(f"/ui/memories/{key}/forget", headers={"X-CSRF-Token": token})
        assert done.status_code == 303
    assert ops.list_memories(service.state.store, "alice").total == 0


def test_a_new_login_gets_a_new_csrf_token(service: Service) -> None:
    with logged_in(service) as first, logged_in(service) as second:
        assert csrf_of(first.get("/ui/forget").text) != csrf_of(second.get("/ui/forget").text)


def test_another_users_memory_is_the_same_not_found(service: Service) -> None:
    bobs = ops.add_memory(service.state.store, "bob", "Bob keeps bees").key
    with logged_in(service, "alice") as client:
        theirs = client.get(f"/ui/memories/{bobs}")
        missing = client.get("/ui/memories/f_000000000000000000000000")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.text == missing.text
        assert "bees" not in theirs.text and "bob" not in theirs.text
        refused = client.post(
            f"/ui/memories/{bobs}/forget",
            data={"csrf_token": csrf_of(client.get("/ui/forget").text)},
        )
        assert refused.status_code == 404
    assert ops.get_memory(service.state.store, "bob", bobs).value["text"] == "Bob keeps bees"
    with service.client("bob") as bob:
        assert bob.post("/threads", json={"thread_id": "bees"}).status_code == 200
    with logged_in(service, "alice") as client:
        theirs = client.get("/ui/threads/bees")
        missing = client.get("/ui/threads/nobody-has-this")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.text == missing.text
        assert "bees" not in client.get("/ui/threads").text


def test_scopes_and_revocation_apply_to_the_session(service: Service) -> None:
    key = ops.add_memory(service.state.store, "alice", "Prefers green tea").key
    with logged_in(service, "no:memories:write") as client:
        page = client.get(f"/ui/memories/{key}")
        assert page.status_code == 200
        refused = client.post(f"/ui/memories/{key}/forget", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403 and "memories:write" in refused.text
    with logged_in(service, "no:memories:read") as client:  # it can chat: sent to threads
        assert client.get("/ui/memories").headers["location"] == "/ui/threads"
        assert client.get(f"/ui/memories/{key}").status_code == 403
    with logged_in(service, "alice") as client:
        assert client.get("/ui/memories").status_code == 200
        for listed in service.state.keys.list("alice"):
            service.state.keys.revoke(listed.key_id)
        assert client.get("/ui/memories").headers["location"] == "/ui/login"


def test_export_downloads_the_shelf_as_json(service: Service) -> None:
    key = ops.add_memory(service.state.store, "alice", "Prefers green tea").key
    with logged_in(service) as client:
        answer = client.get("/ui/export")
        assert answer.status_code == 200
        assert "attachment" in answer.headers["content-disposition"]
        assert [r["key"] for r in answer.json()] == [key]


def test_bad_filters_are_named_not_a_500(service: Service) -> None:
    with logged_in(service) as client:
        answer = client.get("/ui/memories", params={"created_from": "yesterday"})
        assert answer.status_code == 422 and "YYYY-MM-DD" in answer.text
        answer = client.get("/ui/memories", params={"status": "odd"})
        assert answer.status_code == 422 and "Unknown status" in answer.text


def test_package_data_ships_templates_and_static() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = data["package-data"]["memshelf"]
    assert "ui/templates/*.html" in shipped and "ui/static/*" in shipped


def test_status_and_date_filters(service: Service) -> None:
    store = service.state.store
    shelf = ops.shelf_namespace("alice")
    ops.add_memory(store, "alice", "Lives in Lisbon", kind="profile")
    ops.store_put(store, "alice", shelf, "old", {"text": "Lived in Porto", "status": "superseded"})
    ops.store_put(store, "alice", shelf, "gone", {"text": "Visits Rome", "valid_to": "2001-01-01"})
    with logged_in(service) as client:

        def shown(**params: str) -> set[str]:
            page = client.get("/ui/memories", params=params)
            assert page.status_code == 200, page.text
            return {t for t in ("Lisbon", "Porto", "Rome") if t in page.text}

        assert shown() == {"Lisbon", "Rome"}
        assert shown(status="superseded") == {"Porto"}
        assert shown(status="expired") == {"Rome"}
        assert shown(status="all") == {"Lisbon", "Porto", "Rome"}
        assert shown(status="all", kind="profile") == {"Lisbon"}
        assert shown(status="all", created_to="2001-01-01") == set()
        assert shown(status="all", created_from="2001-01-01") == {"Lisbon", "Porto", "Rome"}


def test_forget_by_query_deletes_only_what_the_preview_showed(service: Service) -> None:
    store = service.state.store
    dog = ops.add_memory(store, "alice", "Has a dog named Rex").key
    with logged_in(service) as client:
        page = client.get("/ui/forget", params={"query": "dog named Rex"})
        assert "Has a dog named Rex" in page.text
        token = csrf_of(page.text)
        stale = client.post(
            "/ui/forget", data={"csrf_token": token, "query": "dog named Rex", "keys": "other"}
        )
        assert stale.status_code == 409 and "changed since the preview" in stale.text
        assert ops.get_memory(store, "alice", dog)  # nothing was deleted
        done = client.post(
            "/ui/forget", data={"csrf_token": token, "query": "dog named Rex", "keys": dog}
        )
        assert done.status_code == 200 and "Forgot 1 memory" in done.text
    assert ops.list_memories(store, "alice").total == 0


def test_a_failed_extraction_shows_its_error(
    sqlite_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed state as the writer reports it (a fake status: making the real writer
    fail is tests/memory's job); the page must show the state and the error."""
    with sqlite_service.client("alice") as api:
        assert api.post("/threads", json={"thread_id": "t1"}).status_code == 200
    failed = ThreadStatus(state="failed", error="ModelError: extraction failed", attempts=3)
    monkeypatch.setattr(ui_threads.ops, "extraction_status", lambda *a, **k: failed)
    with logged_in(sqlite_service) as client:
        for path in ("/ui/threads", "/ui/threads/t1"):
            page = client.get(path)
            assert page.status_code == 200
            assert "failed" in page.text and "ModelError: extraction failed" in page.text


def test_a_superseded_memory_links_to_what_replaced_it(service: Service) -> None:
    store = service.state.store
    new = ops.add_memory(store, "alice", "Lives in Lisbon").key
    old = {"text": "Lived in Porto", "status": "superseded", "superseded_by": new}
    ops.store_put(store, "alice", ops.shelf_namespace("alice"), "old", old)
    with logged_in(service) as client:
        page = client.get("/ui/memories/old")
        assert "superseded" in page.text
        assert f'href="/ui/memories/{new}">a newer memory</a>' in page.text


def _session_cookie(client: httpx.Client) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value, "the login set no session cookie"
    return value


def _with_cookie(service: Service, value: str) -> httpx.Response:
    """A fresh client presenting ``value`` as the session cookie (a stolen or kept copy)."""
    with httpx.Client(base_url=service.url, timeout=60) as other:
        return other.get("/ui/memories", headers={"cookie": f"{SESSION_COOKIE}={value}"})


def test_the_cookie_holds_a_session_id_never_the_key(service: Service) -> None:
    token = service.keys["alice"]
    secret = token.rsplit("_", 1)[1]
    with logged_in(service) as client:
        cookie = _session_cookie(client)
        assert token not in cookie and secret not in cookie
        assert _with_cookie(service, cookie).status_code == 200  # the id alone is the session
    records = service.state.store.search(SESSIONS_NAMESPACE, limit=100)
    assert records and all(token not in str(r.value) for r in records)


def test_logout_ends_the_session_on_the_server(service: Service) -> None:
    with logged_in(service) as client:
        cookie = _session_cookie(client)
        token = csrf_of(client.get("/ui/forget").text)
        assert client.post("/ui/logout", data={"csrf_token": token}).status_code == 303
    replayed = _with_cookie(service, cookie)  # a copy kept from before the logout
    assert replayed.status_code == 303 and replayed.headers["location"] == "/ui/login"


def test_a_forged_cookie_gets_the_login_page(service: Service) -> None:
    forged = [
        secrets.token_urlsafe(32),
        f"{secrets.token_hex(16)}.{service.keys['alice']}",  # the old nonce.key form
        "x" * 5000,
    ]
    for value in forged:
        answer = _with_cookie(service, value)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login", value


def test_an_expired_session_gets_the_login_page(service: Service) -> None:
    store = service.state.store
    with logged_in(service) as client:
        cookie = _session_cookie(client)
        assert client.get("/ui/memories").status_code == 200
        (record,) = store.search(SESSIONS_NAMESPACE, limit=100)
        stale = {**record.value, "expires_at": time.time() - 1}
        store.put(SESSIONS_NAMESPACE, record.key, stale, index=False, ttl=None)
        assert client.get("/ui/memories").headers["location"] == "/ui/login"
    assert _with_cookie(service, cookie).headers["location"] == "/ui/login"
    assert store.search(SESSIONS_NAMESPACE, limit=100) == []  # the stale record is gone


def test_revoking_the_key_ends_a_kept_session(service: Service) -> None:
    with logged_in(service, "bob") as client:
        cookie = _session_cookie(client)
    for listed in service.state.keys.list("bob"):
        service.state.keys.revoke(listed.key_id)
    assert _with_cookie(service, cookie).headers["location"] == "/ui/login"


def test_forgetting_the_user_deletes_their_sessions(service: Service) -> None:
    store = service.state.store
    with logged_in(service, "alice") as alice, logged_in(service, "bob") as bob:
        cookie = _session_cookie(alice)
        forget_everything(store, None, "alice")
        assert [r.value["user_id"] for r in store.search(SESSIONS_NAMESPACE)] == ["bob"]
        assert bob.get("/ui/memories").status_code == 200
    assert _with_cookie(service, cookie).headers["location"] == "/ui/login"
