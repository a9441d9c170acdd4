"""Build and validate the namespaces memshelf stores things under, in one place.

A user id becomes one namespace label by percent-encoding every character
outside ``[A-Za-z0-9_-]``. The encoding is injective (``%`` itself is always
encoded), so ``john.doe`` and ``john%2Edoe`` never collide, and the label never
contains ``.`` (LangGraph's label separator) or ``*`` (its wildcard). Stores
match labels exactly, so a prefix ``("memories", "al")`` cannot reach
``("memories", "alice")``.

Threads get the same care: LangGraph's checkpointers key a conversation by
``thread_id`` alone, so memshelf hands them :func:`owned_thread_id`, which
joins the encoded owner and the encoded thread name with ``.``; neither label
can hold ``.``, so no two (owner, thread) pairs share an id.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from memshelf.errors import MissingUserIdError, NamespaceError

MEMORIES = "memories"
TEAM = "team"
THREADS = "threads"
HISTORY = "history"
THREAD_ID_VERSION = "ms1"
MAX_ID_CHARS = 256

_SAFE = re.compile(r"[A-Za-z0-9_-]")


# how to pass each kind of id, for the error that says it is missing
_EXAMPLES = {
    "user id": "config={'configurable': {'user_id': 'alice'}} or --user alice",
    "team id": "--team bees (or config={'configurable': {'team_id': 'bees'}})",
}


def encode_label(raw: str, *, what: str = "user id") -> str:
    """Turn any non-empty id into a namespace label that matches only itself."""
    if not isinstance(raw, str):
        raise NamespaceError(f"The {what} must be a string, got {type(raw).__name__}.")
    if not raw.strip():
        example = _EXAMPLES.get(what, _EXAMPLES["user id"])
        raise MissingUserIdError(
            f"No {what} given (got {raw!r}). Pass a non-empty {what}, e.g. {example}."
        )
    if len(raw) > MAX_ID_CHARS:
        raise NamespaceError(
            f"The {what} is {len(raw)} characters long; the limit is {MAX_ID_CHARS}. "
            "Use a shorter stable id (a database key or a hash)."
        )
    return "".join(
        ch if _SAFE.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in raw
    )


def decode_label(label: str) -> str:
    """The original id of a label made by :func:`encode_label`."""
    return unquote(label)


def memories_namespace(user_id: str) -> tuple[str, str]:
    """``("memories", <user>)``: the shelf holding one user's long-term facts."""
    return (MEMORIES, encode_label(user_id))


def team_namespace(team_id: str, *parts: str) -> tuple[str, ...]:
    """``("team", <team>, ...)``: findings shared by a team of agents."""
    return (
        TEAM,
        encode_label(team_id, what="team id"),
        *(encode_label(p, what="label") for p in parts),
    )


def history_namespace(user_id: str) -> tuple[str, str]:
    """``("history", <user>)``: every change made to one user's memories."""
    return (HISTORY, encode_label(user_id))


def threads_namespace(user_id: str) -> tuple[str, str]:
    """``("threads", <user>)``: the registry of one user's conversations."""
    return (THREADS, encode_label(user_id))


def owned_thread_id(user_id: str, thread_id: str) -> str:
    """The id a checkpointer sees for ``thread_id`` owned by ``user_id``.

    ``ms1.<user>.<thread>``: both parts percent-encoded, so the pair is recoverable
    and distinct pairs never meet (``a.b`` + ``c`` is not ``a`` + ``b.c``). Only
    ``[A-Za-z0-9_%.-]`` reaches the checkpointer (RedisSaver splits keys on ``:``).
    """
    if not isinstance(thread_id, str) or not thread_id.strip():
        raise NamespaceError(
            f"No thread id given (got {thread_id!r}). Pass a non-empty one, e.g. "
            "config={'configurable': {'user_id': 'alice', 'thread_id': 't1'}} or --thread t1."
        )
    user = encode_label(user_id)
    return f"{THREAD_ID_VERSION}.{user}.{encode_label(thread_id, what='thread id')}"


def user_id_of(namespace: tuple[str, ...]) -> str:
    """The user id a ``("memories", <user>)`` namespace belongs to."""
    if len(namespace) != 2 or namespace[0] != MEMORIES:
        raise NamespaceError(f"{namespace!r} is not a memories namespace ('memories', user_id).")
    return decode_label(namespace[1])


def validate_namespace(namespace: tuple[str, ...], *, allow_empty: bool = False) -> None:
    """Reject namespaces a store could not address exactly (LangGraph's rules, made explicit)."""
    if not isinstance(namespace, tuple):
        raise NamespaceError(
            f"A namespace must be a tuple of strings, got {type(namespace).__name__}."
        )
    if not namespace and not allow_empty:
        raise NamespaceError("A namespace cannot be empty; use e.g. ('memories', user_id).")
    for label in namespace:
        if not isinstance(label, str):
            raise NamespaceError(
                f"Namespace labels must be strings; got {type(label).__name__} in {namespace!r}."
            )
        if not label or "." in label or "\x00" in label:
            raise NamespaceError(
                f"Invalid namespace label {label!r} in {namespace!r}: labels must be non-empty "
                "and hold no '.' or NUL. Build user namespaces with "
                "memshelf.namespaces.memories_namespace(user_id), which encodes any id safely."
            )
