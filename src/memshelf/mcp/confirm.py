"""The forget tool's confirm token: the exact memories a preview showed, so the confirming
call forgets those and nothing the query might match by then.

The token is not signed, on purpose: it names only the caller's own memories, which the
caller may delete one by one anyway, so a forged token grants nothing; and an unsigned
token works across service workers and restarts. It is bound to its owner (a hash of the
user id) and to each memory's wording, version and creation time (a memory deleted and
stated again is a new one, not the previewed one), and expires after ``TOKEN_TTL_S``.
It works once: :func:`spend` records its hash in the store (in
:func:`~memshelf.ops.forget.spent_tokens_namespace`, for as long as the token could be
valid), so a retried or repeated confirming call is refused instead of deleting again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any

from langgraph.store.base import BaseStore

from memshelf.errors import InvalidInputError
from memshelf.ops.forget import spent_tokens_namespace

TOKEN_PREFIX = "fgt1."
TOKEN_TTL_S = 15 * 60
MAX_TOKEN_CHARS = 64_000

__all__ = ["TOKEN_PREFIX", "TOKEN_TTL_S", "fingerprint", "issue", "redeem", "spend"]

_SPENT = (
    "This confirm_token was already used; nothing more was forgotten. Call forget again "
    "with `query` to preview what is there now, then confirm with the new token."
)
_INVALID = (
    "This confirm_token is not valid (malformed, expired, or issued to someone else). "
    "Call forget again without confirm_token to preview, then confirm with the new token."
)


def _owner(user_id: str) -> str:
    return hashlib.sha256(f"memshelf-forget:{user_id}".encode()).hexdigest()[:32]


def fingerprint(text: Any, version: Any, created_at: Any) -> str:
    """What must still hold for a previewed memory to be forgotten on confirm: the same
    wording and version of the same memory (its creation time tells a re-added one apart)."""
    return hashlib.sha256(f"{version}\x00{created_at}\x00{text}".encode()).hexdigest()[:16]


def issue(user_id: str, memories: list[tuple[str, str]], *, now: float | None = None) -> str:
    """A token naming ``memories`` (key, fingerprint) for ``user_id``."""
    body = {"o": _owner(user_id), "t": int(now if now is not None else time.time()), "m": memories}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def redeem(user_id: str, token: str, *, now: float | None = None) -> list[tuple[str, str]]:
    """The (key, fingerprint) pairs ``token`` names, if it is ``user_id``'s and fresh."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidInputError(_INVALID)
    payload = token[len(TOKEN_PREFIX) :]
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        owner, issued, memories = body["o"], body["t"], body["m"]
        pairs = [(str(key), str(mark)) for key, mark in memories]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInputError(_INVALID) from None
    age = (now if now is not None else time.time()) - issued if isinstance(issued, int) else -1
    if owner != _owner(user_id) or not 0 <= age <= TOKEN_TTL_S or not pairs:
        raise InvalidInputError(_INVALID)
    return pairs


def spend(store: BaseStore, user_id: str, token: str) -> None:
    """Mark ``token`` used; :class:`InvalidInputError` if it already was. Call it right
    after :func:`redeem`: a token whose preview no longer matches is spent too."""
    namespace = spent_tokens_namespace(user_id)
    key = hashlib.sha256(token.encode()).hexdigest()
    if store.get(namespace, key, refresh_ttl=False) is not None:
        raise InvalidInputError(_SPENT)
    ttl = TOKEN_TTL_S / 60 + 1 if store.supports_ttl else None  # outlives the token itself
    store.put(namespace, key, {"spent_at": int(time.time())}, index=False, ttl=ttl)
