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
        (
            "Caroline went to a support group yesterday.",
            "Caroline went to a support group on 2023-05-24.",
            "2023-05-24",
        ),
        ("Melanie ran a race last Saturday.", "Melanie ran a race on 2023-05-20.", "2023-05-20"),
        (
            "Melanie ran a race this past Thursday.",
            "Melanie ran a race on 2023-05-18.",
            "2023-05-18",
        ),
        ("The exam is next Friday.", "The exam is on 2023-05-26.", "2023-05-26"),
        ("The exam is next Thursday.", "The exam is on 2023-06-01.", "2023-06-01"),
        ("Mel painted a sunrise last year.", "Mel painted a sunrise in 2022.", None),
        ("Mel is going camping next month.", "Mel is going camping in June 2023.", None),
        ("Caroline moved from Sweden 4 years ago.", "Caroline moved from Sweden in 2019.", None),
        ("The user got a cat three days ago.", "The user got a cat on 2023-05-22.", "2023-05-22"),
        ("John went last week.", "John went in the week before 2023-05-25.", None),
        ("Maria hiked this past weekend.", "Maria hiked on the weekend before 2023-05-25.", None),
        ("The user is vegan since yesterday.", "The user is vegan since 2023-05-24.", "2023-05-24"),
        ("The user flies the day after tomorrow.", "The user flies on 2023-05-27.", "2023-05-27"),
        ("The user quit two months ago.", "The user quit in March 2023.", None),
        (
            "The user rested yesterday evening.",
            "The user rested on the evening of 2023-05-24.",
            "2023-05-24",
        ),
        (
            "The user booked a table for tomorrow.",
            "The user booked a table for 2023-05-26.",
            "2023-05-26",
        ),
        # an end, not a start: no day for valid_from
        ("The user is away until tomorrow.", "The user is away until 2023-05-26.", None),
        ("Today the user adopted a dog.", "On 2023-05-25 the user adopted a dog.", "2023-05-25"),
        ("The party last Saturday was fun.", "The party on 2023-05-20 was fun.", "2023-05-20"),
        (
            "The user finished it all yesterday.",
            "The user finished it all on 2023-05-24.",
            "2023-05-24",
        ),
        (
            "The user moved house; Yesterday the user unpacked.",
            "The user moved house; On 2023-05-24 the user unpacked.",
            "2023-05-24",
        ),
    ],
)
def test_relative_dates_become_absolute(text: str, want: str, day: str | None) -> None:
    out, named = absolute_dates(text, THURSDAY)
    assert out == want
    assert (named.isoformat() if named else None) == day


@pytest.mark.parametrize(
    "text",
    [
        "The user visited Rome on Saturday.",  # which Saturday is not said
        "The user recently moved to Leeds.",
        "The user was born on 2001-02-03.",
        "The user's last year of school was hard.",
        "Last year's trip to Oslo was the user's favourite.",
        "The user missed yesterday's meeting.",
        "The user hiked 30 km in one day.",  # a duration
        "The user lost 10 kg in a month.",
        "The user will decide in a day or two.",
        "The user's favourite song is Yesterday by the Beatles.",  # titles
        "The user watches The Day After Tomorrow every winter.",
        "The user spent the last week in Spain.",  # spans and habits
        "The user has had therapy for the last year.",
        "The user runs every last Saturday.",
        "The user feels better than yesterday.",
        "Yesterday was the user's birthday.",
    ],
)
def test_text_without_a_definite_relative_date_is_unchanged(text: str) -> None:
    assert absolute_dates(text, THURSDAY) == (text, None)


@pytest.mark.parametrize(
    ("on", "text", "want"),
    [
        (date(2024, 1, 15), "The user moved last month.", "The user moved in December 2023."),
        (date(2023, 12, 3), "The user moves next month.", "The user moves in January 2024."),
        (date(2024, 3, 1), "The user fell yesterday.", "The user fell on 2024-02-29."),
        (date(2023, 5, 22), "The user ran last Monday.", "The user ran on 2023-05-15."),
    ],
)
def test_calendar_edges(on: date, text: str, want: str) -> None:
    assert absolute_dates(text, on)[0] == want


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


def _extractor(*facts: dict[str, str]) -> ScriptedChatModel:
    return ScriptedChatModel(structured=lambda messages, schema: schema(facts=list(facts)))


def test_extraction_rewrites_a_copied_relative_date_and_sets_valid_from() -> None:
    """A small model copies "yesterday" and gives the message's own date: code fixes both."""
    model = _extractor(
        {
            "text": "Caroline went to an LGBTQ support group yesterday.",
            "kind": "event",
            "valid_from": "2023-05-08",
        },
        {"text": "Caroline painted a sunrise last year.", "kind": "event"},
        {"text": "Caroline has been vegan since yesterday.", "kind": "fact"},
    )
    facts = extract_facts(
        model,
        "I went to an LGBTQ support group yesterday! I painted a sunrise last year too. "
        "And I have been vegan since yesterday.",
        at="1:56 pm on 8 May, 2023",
        speaker="Caroline",
    )
    assert [(f.text, f.valid_from) for f in facts] == [
        ("Caroline went to an LGBTQ support group on 2023-05-07.", "2023-05-07"),
        ("Caroline painted a sunrise in 2022.", None),
        ("Caroline has been vegan since 2023-05-07.", None),  # not an event: no valid_from
    ]


def test_a_model_that_resolves_the_date_itself_is_grounded_and_kept() -> None:
    """The prompt asks the model to work out "yesterday": its date is not in the message,
    but it is the message's "yesterday", so the fact is grounded; a date the model gave
    that is not the message's own is kept."""
    model = _extractor(
        {"text": "The user went to a support group on 2023-05-24.", "kind": "event"},
        {
            "text": "The user booked their wedding for 2023-09-16 yesterday.",
            "kind": "plan",
            "valid_from": "2023-09-16",
        },
    )
    facts = extract_facts(
        model,
        "I went to a support group yesterday, and I booked our wedding for 2023-09-16 yesterday.",
        at="2023-05-25",
    )
    assert [(f.text, f.valid_from) for f in facts] == [
        ("The user went to a support group on 2023-05-24.", None),
        ("The user booked their wedding for 2023-09-16 on 2023-05-24.", "2023-09-16"),
    ]


def test_a_resolved_date_grounds_only_itself() -> None:
    """The message's own dates are allowed in a fact as whole dates, not as a source of
    digits: an invented count or a wrong day is still not grounded."""
    model = _extractor(
        {"text": "The user went to 3 support groups yesterday.", "kind": "event"},
        {"text": "The user went to a support group on 2023-05-20.", "kind": "event"},
        {"text": "The user, 24, went to a support group.", "kind": "event"},
        {"text": "The user went to a support group on 2023-05-24.", "kind": "event"},
    )
    facts = extract_facts(model, "I went to a support group yesterday.", at="2023-05-25")
    assert [f.text for f in facts] == ["The user went to a support group on 2023-05-24."]


def test_valid_from_agrees_with_the_day_the_text_names() -> None:
    """New-user trial: "next Friday" became "on 2026-12-04" in the text while the model's
    valid_from said 2026-12-06; recall then showed both."""
    model = _extractor(
        {
            "text": "The user is flying to Lisbon next Friday.",
            "kind": "event",
            "valid_from": "2026-12-06",
        }
    )
    facts = extract_facts(model, "I'm flying to Lisbon next Friday.", at="2026-12-01")
    assert [(f.text, f.valid_from) for f in facts] == [
        ("The user is flying to Lisbon on 2026-12-04.", "2026-12-04")
    ]


def test_an_event_without_a_model_date_gets_the_day_its_text_names() -> None:
    model = _extractor({"text": "The user went to a pottery class yesterday.", "kind": "event"})
    facts = extract_facts(model, "I went to a pottery class yesterday.", at="2026-12-01")
    assert [(f.text, f.valid_from) for f in facts] == [
        ("The user went to a pottery class on 2026-11-30.", "2026-11-30")
    ]
