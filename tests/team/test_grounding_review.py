"""Review of issue 14's grounding check (adversarial): a sentence that nearly repeats its
quote must still hold the quote's numbers and negations, and a negation written as a
contraction ("don't", "can't") is a negation. Each case passed the check before its fix."""

from __future__ import annotations

import pytest

from memshelf.team.grounding import check_answer, supports

LIFE = (
    "A worker honeybee lives about six weeks in summer, while the queen lives three to five years."
)
EGGS = "Queens lay eggs in the cells of the comb."


@pytest.mark.parametrize(
    "sentence",
    [
        # one changed number in an otherwise verbatim sentence (fuzzy presence matched)
        LIFE.replace("six weeks", "sixty weeks"),
        LIFE.replace("three to five", "three to fifty"),
        # a negation added to an otherwise verbatim sentence
        "Queens do not lay eggs in the cells of the comb.",
    ],
)
def test_a_near_verbatim_sentence_with_a_changed_number_or_negation_is_dropped(
    sentence: str,
) -> None:
    quote = LIFE if "honeybee" in sentence else EGGS
    assert not supports(sentence, quote, "How long does a queen live?")
    kept, dropped = check_answer(sentence + " [1]", [quote], "How long does a queen live?")
    assert kept == [] and len(dropped) == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "Queens don't lay eggs in the cells of the comb.",
        "Queens won't lay eggs in the cells of the comb.",
        "Queens can't lay eggs in cells of the comb.",
        "Queens don\u2019t lay eggs in the cells of the comb.",  # a typographic apostrophe
    ],
)
def test_a_contracted_negation_is_a_negation(sentence: str) -> None:
    assert not supports(sentence, EGGS, "Where do queens lay eggs?")


def test_the_quote_itself_and_its_near_copies_still_pass() -> None:
    assert supports(LIFE, LIFE, "How long does a queen live?")
    assert supports(LIFE.replace("honeybee", "honey bee"), LIFE, "How long does a queen live?")
    assert supports(EGGS.rstrip(".") + " [1].", EGGS, "Where do queens lay eggs?")
    drone = "Queens don't lay eggs in drone cells."
    assert supports(drone, drone)


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        # one quote, two subjects: the worker's number given to the queen, and back
        ("The queen lives about six weeks in summer.", "How long does a queen live?"),
        ("A worker honeybee lives three to five years.", "How long does a worker honeybee live?"),
    ],
)
def test_a_number_moved_to_another_subject_of_the_same_quote_is_dropped(
    sentence: str, question: str
) -> None:
    assert not supports(sentence, LIFE, question)


def test_each_subject_keeps_its_own_number_from_a_two_subject_quote() -> None:
    assert supports("The queen lives three to five years.", LIFE, "How long does a queen live?")
    assert supports(
        "A worker honeybee lives about six weeks in summer.",
        LIFE,
        "How long does a worker honeybee live?",
    )


def test_an_apposition_is_not_a_change_of_subject() -> None:
    quote = "The queen, the colony's only fertile female, lives three to five years."
    assert supports("The queen lives three to five years.", quote, "How long does a queen live?")
    both = "Workers live about six weeks in summer, and queens live three to five years."
    assert not supports("Queens live about six weeks.", both, "How long do queens live?")


@pytest.mark.parametrize(
    "sentence",
    [
        "Only queens lay eggs in the cells of the comb.",
        "Queens rarely lay eggs in the cells of the comb.",
        "Queens seldom lay eggs in cells of the comb.",
    ],
)
def test_a_qualifier_the_quote_lacks_is_dropped(sentence: str) -> None:
    assert not supports(sentence, EGGS, "Where do queens lay eggs?")


def test_more_than_is_not_up_to() -> None:
    quote = "A queen lays up to 2,000 eggs a day in early summer."
    question = "How many eggs does a queen lay?"
    assert not supports("A queen lays more than 2,000 eggs a day.", quote, question)
    assert supports("A queen lays up to 2000 eggs a day.", quote, question)
