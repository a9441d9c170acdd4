"""API keys: random tokens stored only as hashes, each bound to one user, a set of scopes
and the teams (if any) whose findings it may reach.

The service takes the user id and the team ids from the key and nowhere else. A token looks like
``msk_<key id>_<secret>``; the store keeps the key id, the SHA-256 of the whole
token, the user, the scopes, the teams and the revocation time, under the ``("keys",)``
namespace, which no user-facing route can address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore

from memshelf.errors import ConfigurationError, NotFoundError
from memshelf.namespaces import encode_label, team_namespace

KEYS_NAMESPACE = ("keys",)
PREFIX = "msk_"
FINDINGS_SCOPES = ("findings:read", "findings:write")
SCOPES = ("chat", "memories:read", "memories:write", *FINDINGS_SCOPES, "admin")
DEFAULT_SCOPES = ("chat", "memories:read", "memories:write")
MAX_TEAMS = 50

__all__ = ["DEFAULT_SCOPES", "FINDINGS_SCOPES", "SCOPES", "ApiKey", "KeyRing", "default_scopes"]


@dataclass(frozen=True)
class ApiKey:
    """What a key grants. ``user_id`` is the only owner a request made with it can act for."""

    key_id: str
    user_id: str
    scopes: tuple[str, ...]
    name: str
    created_at: str
    revoked_at: str | None = None
    teams: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """The key's description, never its secret or hash."""
        return {
            "key_id": self.key_id,
            "user_id": self.user_id,
            "scopes": list(self.scopes),
            "teams": list(self.teams),
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown or not chosen:
        raise ConfigurationError(
            f"Unknown or missing scope(s) {unknown or '(none)'}; scopes are {', '.join(SCOPES)}."
        )
    return chosen


def default_scopes(teams: Iterable[str] = ()) -> tuple[str, ...]:
    """What a key gets when no scope is named: a key of a team also reads and proposes
    its findings."""
    return DEFAULT_SCOPES + (FINDINGS_SCOPES if tuple(teams) else ())


def _checked_teams(teams: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(teams))
    for team in chosen:
        team_namespace(team, "findings")  # the same validation every team namespace applies
    if len(chosen) > MAX_TEAMS:
        raise ConfigurationError(
            f"A key may belong to at most {MAX_TEAMS} teams, got {len(chosen)}; "
            "make one key per group of teams."
        )
    return chosen


class KeyRing:
    """Create, verify, list and revoke API keys kept in a store."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    def create(
        self,
        user_id: str,
        scopes: Iterable[str] | None = None,
        name: str = "",
        *,
        teams: Iterable[str] = (),
    ) -> tuple[ApiKey, str]:
        """A new key for ``user_id`` (a member of ``teams``); returns it and its token
        (shown once, never stored). No ``scopes``: :func:`default_scopes`."""
        encode_label(user_id)  # the same validation every shelf applies
        member_of = _checked_teams(teams)
        granted = _checked_scopes(default_scopes(member_of) if scopes is None else scopes)
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            key_id=key_id,
            user_id=user_id,
            scopes=granted,
            name=name[:200],
            created_at=datetime.now(UTC).isoformat(),
            teams=member_of,
        )
        self.store.put(
            KEYS_NAMESPACE,
            key_id,
            {**key.public(), "sha256": _digest(token)},
            index=False,
            ttl=None,
        )
        return key, token

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` belongs to, or None (malformed, unknown, revoked)."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        key_id, _, secret = token[len(PREFIX) :].partition("_")
        if not key_id or not secret:
            return None
        item = self.store.get(KEYS_NAMESPACE, key_id, refresh_ttl=False)
        if item is None or not hmac.compare_digest(item.value.get("sha256", ""), _digest(token)):
            return None
        key = _key(item.value)
        return key if key.active else None

    def active(self, key_id: str) -> ApiKey | None:
        """Key ``key_id`` if it still exists and is not revoked (a UI session re-checks
        its key this way on every request, without holding the token)."""
        item = self.store.get(KEYS_NAMESPACE, key_id, refresh_ttl=False) if key_id else None
        key = _key(item.value) if item is not None else None
        return key if key is not None and key.active else None

    def list(self, user_id: str | None = None) -> list[ApiKey]:
        """Every key (or ``user_id``'s), oldest first; revoked ones included."""
        keys: list[ApiKey] = []
        offset = 0
        while batch := self.store.search(
            KEYS_NAMESPACE, limit=500, offset=offset, refresh_ttl=False
        ):
            offset += len(batch)
            keys += [_key(i.value) for i in batch]
        if user_id is not None:
            keys = [k for k in keys if k.user_id == user_id]
        return sorted(keys, key=lambda k: k.created_at)

    def any_active(self) -> bool:
        return any(k.active for k in self.list())

    def revoke(self, key_id: str, *, user_id: str | None = None) -> ApiKey:
        """Revoke a key (only ``user_id``'s when given); revoking twice is harmless."""
        item = self.store.get(KEYS_NAMESPACE, key_id, refresh_ttl=False) if key_id else None
        if item is None or (user_id is not None and item.value.get("user_id") != user_id):
            raise NotFoundError(f"No API key {key_id!r}. `memshelf keys list` shows the keys.")
        if item.value.get("revoked_at") is None:
            value = {**item.value, "revoked_at": datetime.now(UTC).isoformat()}
            self.store.put(KEYS_NAMESPACE, key_id, value, index=False, ttl=None)
            return _key(value)
        return _key(item.value)


def _key(value: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=value["key_id"],
        user_id=value["user_id"],
        scopes=tuple(value["scopes"]),
        name=value.get("name", ""),
        created_at=value["created_at"],
        revoked_at=value.get("revoked_at"),
        teams=tuple(value.get("teams") or ()),  # keys made before teams existed have none
    )
