from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memshelf.errors import MissingUserIdError, NamespaceError
from memshelf.namespaces import (
    decode_label,
    encode_label,
    memories_namespace,
    team_namespace,
    user_id_of,
)


@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_encoding_round_trips_and_is_a_safe_label(raw: str) -> None:
    label = encode_label(raw)
    assert decode_label(label) == raw
    assert "." not in label and "*" not in label and "\x00" not in label and label


@given(
    st.text(min_size=1, max_size=12).filter(str.strip),
    st.text(min_size=1, max_size=12).filter(str.strip),
)
def test_encoding_is_injective(a: str, b: str) -> None:
    assert (encode_label(a) == encode_label(b)) == (a == b)


def test_readable_ids_stay_readable() -> None:
    assert memories_namespace("john_doe") == ("memories", "john_doe")
    assert memories_namespace("john-doe") == ("memories", "john-doe")
    assert memories_namespace("john.doe") == ("memories", "john%2Edoe")
    assert user_id_of(memories_namespace("a@b.c")) == "a@b.c"


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
def test_missing_user_id_says_how_to_pass_it(bad: str) -> None:
    with pytest.raises(MissingUserIdError, match="user_id"):
        memories_namespace(bad)


def test_other_bad_ids() -> None:
    with pytest.raises(NamespaceError, match="limit"):
        memories_namespace("x" * 1000)
    with pytest.raises(NamespaceError, match="string"):
        memories_namespace(42)  # type: ignore[arg-type]
    with pytest.raises(NamespaceError):
        user_id_of(("team", "x"))


def test_team_namespace() -> None:
    assert team_namespace("core", "findings") == ("team", "core", "findings")
