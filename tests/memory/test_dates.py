"""Relative dates in extracted facts made absolute from the message's date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from memshelf.llm.fake import ScriptedChatModel
from memshelf.memory.dates import absolute_dates, message_date
from memshelf.memory.extract import extract_facts

THURSDAY = date(2023, 5, 25)


@pytest.mark.parametrize(
    ("text", "want", "day"),
    [
        ("Caroline went to a support group yesterday.", "on 2023-05-24.", "2023-05-24"),
        ("Melanie ran a charity race last Saturday.", "on 2023-05-20.", "2023-05-20"),
        ("Melanie ran a race this past Thursday.", "on 2023-05-18.", "2023-05-18"),
        ("The exam is next Friday.", "on 2023-05-26.", "2023-05-26"),
        ("The exam is next Thursday.", "on 2023-06-01.", "2023-06-01"),
        ("Melanie painted that lake sunrise last year.", "in 2022.", None),
        ("Melanie is going camping next month.", "in June 2023.", None),
        ("Caroline moved from Sweden 4 years ago.", "in 2019.", None),
        ("The user adopted a cat three days ago.", "on 2023-05-22.", "2023-05-22"),
        ("The user starts the job in two weeks.", "in the week of 2023-06-08.", None),
        ("John went to the shelter last week.", "in the week before 2023-05-25.", None),
        ("Maria went hiking this past weekend.", "on the weekend before 2023-05-25.", None),
        ("The user has been vegan since yesterday.", "since 2023-05-24.", "2023-05-24"),
        ("The user flies out the day after tomorrow.", "on 2023-05-27.", "2023-05-27"),
        ("The user quit the job two months ago.", "in March 2023.", None),
    ],
)
def test_relative_dates_become_absolute(text: str, want: str, day: str | None) -> None:
    out, named = absolute_dates(text, THURSDAY)
    assert out.endswith(want), out
    assert (named.isoformat() if named else None) == day


def test_a_sentence_opening_with_a_relative_date_stays_capitalised() -> None:
    assert absolute_dates("Today the user adopted a dog.", THURSDAY)[0] == (
        "On 2023-05-25 the user adopted a dog."
    )


@pytest.mark.parametrize(
    "text",
    [
        "The user visited Rome on Saturday.",  # which Saturday is not said
        "The user recently moved to Leeds.",
        "The user signed up in a minute.",
        "The user was born on 2001-02-03.",
        "The user's last year of school was hard.",
        "Last year's trip to Oslo was the user's favourite.",
        "The user missed yesterday's meeting.",
    ],
)
def test_text_without_a_definite_relative_date_is_unchanged(text: str) -> None:
    assert absolute_dates(text, THURSDAY) == (text, None)


@pytest.mark.parametrize(
    ("written", "want"),
    [
        ("1:14 pm on 25 May, 2023", THURSDAY),
        ("May 25, 2023", THURSDAY),
        ("2023-05-25", THURSDAY),
        ("2023-05-25T09:30:00+00:00", THURSDAY),
        (datetime(2023, 5, 25, 23, 0, tzinfo=UTC), THURSDAY),
        ("31 February, 2023", None),
        ("sometime in spring", None),
        (None, None),
    ],
)
def test_message_dates_as_written(written: object, want: date | None) -> None:
    assert message_date(written) == want  # type: ignore[arg-type]


def test_extraction_rewrites_a_copied_relative_date_and_sets_valid_from() -> None:
    """A small model copies "yesterday" and gives the message's own date: code fixes both."""
    model = ScriptedChatModel(
        structured=lambda messages, schema: schema(
            facts=[
                {
                    "text": "Caroline went to an LGBTQ support group yesterday.",
                    "kind": "event",
                    "valid_from": "2023-05-08",
                },
                {"text": "Caroline painted a sunrise last year.", "kind": "event"},
            ]
        )
    )
    facts = extract_facts(
        model,
        "I went to an LGBTQ support group yesterday! I painted a sunrise last year too.",
        at="1:56 pm on 8 May, 2023",
        speaker="Caroline",
    )
    assert [(f.text, f.valid_from) for f in facts] == [
        ("Caroline went to an LGBTQ support group on 2023-05-07.", "2023-05-07"),
        ("Caroline painted a sunrise in 2022.", None),
    ]
