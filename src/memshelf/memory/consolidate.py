"""Consolidation: each new fact against the user's closest current memories.

ADD (new information), UPDATE (the same fact, refined), SUPERSEDE (a contradiction
or a change: the old memory is kept, marked ``superseded`` with ``invalid_at`` and
``superseded_by``, and leaves recall) or NOOP (already known). Exact and near-exact
duplicates, and facts with no close neighbour, are settled in code; otherwise the
model decides, seeing the neighbours as small integers (models invent store keys),
because contradiction is a judgement, not a similarity threshold. Code then vets the
decision so a small model cannot lose data: a decision between facts opening with
different names, or about a memory that shares no content word with the fact besides
its subject and dates (and announces no change), becomes ADD; an UPDATE that would
drop a name or number of the memory it refines, or most of its other words, becomes
ADD; a NOOP whose memory lacks the fact's names or most of its words becomes ADD; and
an UPDATE of a fact that says it changed becomes SUPERSEDE, so the old state stays in
history. (With a 1.5B model, 26 of 40 LoCoMo facts were UPDATEs of memories that
shared only the person's name: "Caroline is up for the challenge!" replaced
"Caroline is keen on counseling".)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.store.base import BaseStore, SearchItem
from pydantic import BaseModel, Field

from memshelf.memory.guard import (
    announces_replacement,
    covers,
    same_content,
    same_subject,
    shares_content,
    specifics,
)
from memshelf.memory.history import record
from memshelf.memory.shelf import put_memory
from memshelf.memory.types import (
    CURRENT,
    SUPERSEDED,
    Fact,
    Provenance,
    fact_key,
    fact_value,
    now_iso,
    same_wording,
)
from memshelf.namespaces import memories_namespace

Op = Literal["ADD", "UPDATE", "SUPERSEDE", "NOOP"]
NEIGHBOURS = 5
NEIGHBOUR_MIN_SCORE = 0.3  # below this a memory is about something else: ADD, no model call

CONSOLIDATE_SYSTEM = """\
You keep a user's memory consistent. You get the user's existing memories, numbered, \
and one NEW fact. Decide what to do with the NEW fact:
- ADD: it is about something none of the memories covers.
- UPDATE n: it is the same fact as memory n with more or corrected detail, so it can \
replace memory n without losing anything.
- SUPERSEDE n: it contradicts memory n, or says memory n changed or ended (moved, \
switched, no longer, quit, replaced, until a date that has passed). Memory n stops \
being true.
- NOOP n: memory n already says the same thing.
Two facts about different things can both be true: a new hobby does not replace an old \
one unless the user says so. A move, migration or switch from one thing to another is \
SUPERSEDE, not UPDATE: the old memory says something that is no longer true.

Examples:
Memories: 1. The user rents a flat in Leeds.
NEW: The user bought a house in York and left Leeds. -> {"op": "SUPERSEDE", "target": 1}
Memories: 1. The user's company stores invoices in Dropbox.
NEW: The user's company moved all invoices from Dropbox to SharePoint. -> \
{"op": "SUPERSEDE", "target": 1}
Memories: 1. The user sings in a choir.
NEW: The user sings tenor in the Leeds Philharmonic choir. -> {"op": "UPDATE", "target": 1}
Memories: 1. The user reads fantasy novels.  2. The user has a parrot named Kiwi.
NEW: The user has a hamster named Pip. -> {"op": "ADD", "target": null}
Memories: 1. The user's lab uses Slurm for its GPU cluster.
NEW: The user's lab schedules GPU jobs with Slurm. -> {"op": "NOOP", "target": 1}
Memories: 1. The user cycles to work.
NEW: The user stopped cycling to work after a knee injury. -> {"op": "SUPERSEDE", "target": 1}"""


class Decision(BaseModel):
    op: Op = Field(description="ADD, UPDATE, SUPERSEDE or NOOP.")
    target: int | None = Field(default=None, description="The memory's number, or null.")


@dataclass(frozen=True)
class Outcome:
    """What consolidation did with one fact; ``key`` is the memory it now lives in."""

    op: Op
    text: str
    key: str | None
    target: str | None = None  # the existing memory it updated, superseded or repeated
    by_model: bool = False


def _neighbours(store: BaseStore, user_id: str, text: str) -> list[SearchItem]:
    hits = store.search(memories_namespace(user_id), query=text, filter=CURRENT, limit=NEIGHBOURS)
    return [h for h in hits if h.score is None or h.score >= NEIGHBOUR_MIN_SCORE]


def _settled_in_code(fact: Fact, near: list[SearchItem]) -> tuple[Op, SearchItem | None] | None:
    """Exact and near-exact duplicates, and facts with nothing close: no model needed."""
    if not near:
        return "ADD", None
    for hit in near:
        text = str(hit.value.get("text", ""))
        if same_wording(text, fact.text) or same_content(text, fact.text):
            return "NOOP", hit
    return None


def decide(model: BaseChatModel, fact: Fact, near: list[SearchItem]) -> tuple[Op, int | None]:
    """The model's decision about ``fact`` against numbered neighbours (1-based)."""
    listing = "\n".join(f"{i}. {h.value.get('text')}" for i, h in enumerate(near, 1))
    prompt = f"Memories:\n{listing}\nNEW: {fact.text}"
    result = model.with_structured_output(Decision).invoke(
        [SystemMessage(CONSOLIDATE_SYSTEM), HumanMessage(prompt)]
    )
    decision = result if isinstance(result, Decision) else Decision.model_validate(result)
    if decision.op == "ADD":
        return "ADD", None
    if decision.target is None or not 1 <= decision.target <= len(near):
        return "ADD", None  # a decision about a memory that was not shown: keep the fact
    target = str(near[decision.target - 1].value.get("text", ""))
    if not same_subject(fact.text, target):
        return "ADD", None  # facts about two different named things never replace each other
    if not shares_content(fact.text, target, skip_subject=True) and not (
        decision.op == "SUPERSEDE" and announces_replacement(fact.text)
    ):
        return "ADD", None  # nothing in common but whom it is about, and no change announced
    if decision.op == "UPDATE" and announces_replacement(fact.text):
        # the model judged them the same fact (and they share more than the subject); a
        # fact that says it changed replaces the old one rather than refining it, so the
        # old one is kept as superseded
        return "SUPERSEDE", decision.target
    if decision.op == "UPDATE":
        if not specifics(target) <= specifics(fact.text):
            return "ADD", None  # a refinement keeps every name and number of what it refines
        if not covers(fact.text, target):
            return "ADD", None  # ...and most of what it says
    if decision.op == "NOOP" and not (
        specifics(fact.text) <= specifics(target) and covers(target, fact.text)
    ):
        return "ADD", None  # "already known" only when the memory says most of it
    return decision.op, decision.target


def consolidate(
    store: BaseStore,
    model: BaseChatModel | None,
    user_id: str,
    fact: Fact,
    provenance: Provenance,
    *,
    kind_ttl: Mapping[str, float | None] | None = None,
) -> Outcome:
    """Apply one fact to the user's shelf; every change is recorded in its history.

    Without a model (a person adding a fact by hand) only code decides: duplicates
    are NOOPs and everything else is added.
    """
    near = _neighbours(store, user_id, fact.text)
    settled = _settled_in_code(fact, near)
    by_model = settled is None and model is not None
    if settled is not None:
        op, hit = settled
    elif model is None:
        op, hit = "ADD", None
    else:
        op, number = decide(model, fact, near)
        hit = near[number - 1] if number else None
    if op == "NOOP" and hit is not None:
        return Outcome("NOOP", fact.text, hit.key, hit.key, by_model)
    if op == "UPDATE" and hit is not None:
        before = dict(hit.value)
        after = {
            **fact_value(fact, provenance),
            "version": int(before.get("version", 1)) + 1,
            **({"pinned": True} if before.get("pinned") else {}),
        }
        put_memory(store, user_id, hit.key, after, kind_ttl=kind_ttl)
        record(store, user_id, hit.key, "update", before, after, provenance)
        return Outcome("UPDATE", fact.text, hit.key, hit.key, by_model)
    key = add(store, user_id, fact, provenance, kind_ttl=kind_ttl, supersedes=hit)
    if op == "SUPERSEDE" and hit is not None:
        return Outcome("SUPERSEDE", fact.text, key, hit.key, by_model)
    return Outcome("ADD", fact.text, key, None, by_model)


def add(
    store: BaseStore,
    user_id: str,
    fact: Fact,
    provenance: Provenance,
    *,
    kind_ttl: Mapping[str, float | None] | None = None,
    supersedes: SearchItem | None = None,
    pinned: bool = False,
) -> str:
    """Store a new memory (and retire the one it supersedes); returns its key."""
    namespace = memories_namespace(user_id)
    key = fact_key(fact.text)
    old = store.get(namespace, key)
    if old is not None and not same_wording(str(old.value.get("text", "")), fact.text):
        # the key was made from this wording, but that memory has been reworded since
        # (update, edit): it is another memory now, so this fact gets a key of its own
        key, old = "f_" + uuid.uuid4().hex[:24], None
    value: dict[str, Any] = fact_value(fact, provenance, pinned=pinned)
    if old is not None:
        value["version"] = int(old.value.get("version", 1)) + 1
    if supersedes is not None and supersedes.key != key:
        value["supersedes"] = [supersedes.key]
    put_memory(store, user_id, key, value, kind_ttl=kind_ttl)
    record(store, user_id, key, "add", old.value if old else None, value, provenance)
    if supersedes is not None and supersedes.key != key:
        before = dict(supersedes.value)
        retired = {
            **before,
            "status": SUPERSEDED,
            "invalid_at": now_iso(),
            "superseded_by": key,
            "version": int(before.get("version", 1)) + 1,
        }
        put_memory(store, user_id, supersedes.key, retired, kind_ttl=kind_ttl)
        record(store, user_id, supersedes.key, "supersede", before, retired, provenance)
    return key
