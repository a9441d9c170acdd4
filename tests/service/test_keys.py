"""API keys: hashed at rest, bound to one user, scoped, revocable; the user comes from the key."""

from __future__ import annotations

from memshelf.ops.keys import KeyRing
from memshelf.stores import open_store
from tests.service.conftest import Service


def test_token_is_stored_only_as_a_hash(sqlite_service: Service) -> None:
    raw = sqlite_service.settings.default_store_path.read_bytes()
    for token in sqlite_service.keys.values():
        secret = token.split("_", 2)[2]
        assert secret.encode() not in raw


def test_user_comes_from_the_key(sqlite_service: Service) -> None:
    with sqlite_service.client("bob") as bob:
        me = bob.get("/v1/me", params={"user_id": "alice"}, headers={"x-user-id": "alice"})
    assert me.status_code == 200
    assert me.json()["user_id"] == "bob"


def test_bearer_and_x_api_key_both_work(sqlite_service: Service) -> None:
    token = sqlite_service.keys["alice"]
    with sqlite_service.client(None) as anon:
        assert (
            anon.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["user_id"]
            == "alice"
        )
        assert anon.get("/v1/me", headers={"x-api-key": token}).status_code == 200
        assert anon.get("/v1/me").status_code == 401
        assert anon.get("/v1/me", headers={"x-api-key": token + "x"}).status_code == 401
        assert (
            anon.get("/v1/me", headers={"x-api-key": sqlite_service.keys["revoked"]}).status_code
            == 401
        )


def test_admin_creates_lists_and_revokes(sqlite_service: Service) -> None:
    with sqlite_service.client("admin") as admin, sqlite_service.client(None) as anon:
        made = admin.post("/v1/keys", json={"user_id": "carol", "scopes": ["memories:read"]})
        assert made.status_code == 201
        token = made.json()["token"]
        assert anon.get("/v1/me", headers={"x-api-key": token}).json()["user_id"] == "carol"
        listed = admin.get("/v1/keys", params={"user_id": "carol"}).json()
        assert [k["key_id"] for k in listed] == [made.json()["key_id"]]
        assert all("token" not in k and "sha256" not in k for k in listed)
        assert admin.delete(f"/v1/keys/{made.json()['key_id']}").status_code == 200
        assert anon.get("/v1/me", headers={"x-api-key": token}).status_code == 401
        assert admin.post("/v1/keys", json={"user_id": "c", "scopes": ["root"]}).status_code == 422
    with sqlite_service.client("alice") as alice:
        assert alice.get("/v1/keys").status_code == 403


def test_keyring_rejects_forged_tokens(settings) -> None:  # type: ignore[no-untyped-def]
    with open_store(settings=settings.model_copy(update={"embeddings": "fake"})) as store:
        ring = KeyRing(store)
        key, token = ring.create("alice")
        assert ring.verify(token) == key
        key_id = key.key_id
        assert ring.verify(f"msk_{key_id}_guess") is None
        assert ring.verify(token.replace("msk_", "sk_")) is None
        assert ring.verify("msk__") is None
        other, _ = ring.create("bob")
        assert ring.verify(token.replace(key_id, other.key_id)) is None
