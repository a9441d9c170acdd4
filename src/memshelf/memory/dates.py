"""Relative dates in a fact made absolute, from the date the message was written.

A memory outlives the day it was said: "Caroline went to a support group yesterday"
is wrong by the next morning. Small local models copy such words into the fact
and, asked for the date, give the message's own. So code rewrites them, in English:
"yesterday" -> "on 2023-05-07", "last Saturday" -> "on 2023-05-20", "last year" ->
"in 2022", "next month" -> "in June 2023", "3 days ago" -> "on 2023-05-05". The day
an expression names (when it names one day, as a start) is the event's ``valid_from``.
Phrases that name no definite time ("recently", "on Saturday") are left alone, and so
are possessives and parts ("last year's trip", "the last week of term").
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a couple of": 2,
}  # fmt: skip

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]+),? (\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([A-Za-z]+) (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b")

_COUNT = r"(\d{1,2}|a couple of|an?|one|two|three|four|five|six|seven|eight|nine|ten)"
_WEEKDAY = "|".join(_WEEKDAYS)
_RELATIVE = re.compile(
    rf"\b(?:(?P<prep>since|until|till|from|before|after|by|for|on|in|during) )?(?:"
    r"(?P<dby>the day before yesterday)|(?P<dat>the day after tomorrow)|"
    r"(?P<day>yesterday|today|tonight|tomorrow)(?: (?P<part>morning|afternoon|evening|night))?|"
    rf"(?:last|this past) (?P<last_wd>{_WEEKDAY})|next (?P<next_wd>{_WEEKDAY})|"
    r"(?P<last_p>last|next|this past|this) (?P<period>week|weekend|month|year)|"
    rf"(?P<ago_n>{_COUNT}) (?P<ago_unit>day|week|month|year)s? ago"
    r")\b(?!['\u2019]s\b| of\b)",  # "last year's trip", "the last week of June": not a date
    re.IGNORECASE,
)
# "the last week" and "every last Saturday" are spans and habits; "than yesterday" a
# comparison: no date is meant.
_NOT_A_DATE_BEFORE = re.compile(r"\b(the|every|each|than)\s+$", re.IGNORECASE)
# "Yesterday was the user's birthday": the day is the sentence's subject, not a time
_AS_SUBJECT = re.compile(r"\s+(was|is|has|had|will|were)\b", re.IGNORECASE)
_DATE_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}|[A-Z][a-z]+ \d{4}|\b\d{4}\b")
_DAY_OFFSETS = {
    "the day before yesterday": -2,
    "yesterday": -1,
    "tomorrow": 1,
    "the day after tomorrow": 2,
}
_POINT_PREPOSITIONS = {"since", "until", "till", "from", "before", "after", "by", "for"}
_END_PREPOSITIONS = {"until", "till", "by", "before"}


def message_date(at: datetime | date | str | None) -> date | None:
    """The calendar date a message was written, from a datetime or a date as written
    ("2023-05-08", "1:56 pm on 8 May, 2023", "May 8, 2023"); None if there is none."""
    if isinstance(at, datetime):
        return at.date()
    if isinstance(at, date):
        return at
    if not at:
        return None
    if found := _ISO.search(at):
        return _safe_date(int(found[1]), int(found[2]), int(found[3]))
    if (found := _DAY_MONTH_YEAR.search(at)) and found[2].lower() in _MONTHS:
        return _safe_date(int(found[3]), _MONTHS[found[2].lower()], int(found[1]))
    if (found := _MONTH_DAY_YEAR.search(at)) and found[1].lower() in _MONTHS:
        return _safe_date(int(found[3]), _MONTHS[found[1].lower()], int(found[2]))
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month_text(day: date) -> str:
    return f"{calendar.month_name[day.month]} {day.year}"


def _resolve(m: re.Match[str], on: date) -> tuple[str, date | None]:
    """The absolute wording for one relative expression, and the day it names (if one)."""
    if m["dby"] or m["dat"] or m["day"]:
        word = "the day before yesterday" if m["dby"] else (m["dat"] or m["day"]).lower()
        day = on + timedelta(days=_DAY_OFFSETS.get(word, 0))
        part = (m["part"] or "").lower()
        return (f"the {part} of {day.isoformat()}" if part else day.isoformat()), day
    if m["last_wd"]:
        back = (on.weekday() - _WEEKDAYS[m["last_wd"].lower()]) % 7 or 7
        day = on - timedelta(days=back)
        return day.isoformat(), day
    if m["next_wd"]:
        ahead = (_WEEKDAYS[m["next_wd"].lower()] - on.weekday()) % 7 or 7
        day = on + timedelta(days=ahead)
        return day.isoformat(), day
    if m["period"]:
        step = {"last": -1, "this past": -1, "next": 1, "this": 0}[m["last_p"].lower()]
        period = m["period"].lower()
        if period == "year":
            return str(on.year + step), None
        if period == "month":
            return _month_text(_shift_months(on, step)), None
        relation = {-1: "before", 0: "of", 1: "after"}[step]
        return f"the {period} {relation} {on.isoformat()}", None
    n = _count(m["ago_n"])
    unit = m["ago_unit"].lower()
    if unit == "day":
        day = on - timedelta(days=n)
        return day.isoformat(), day
    if unit == "week":
        return f"the week of {(on - timedelta(weeks=n)).isoformat()}", None
    if unit == "month":
        return _month_text(_shift_months(on, -n)), None
    return str(on.year - n), None


def _dates(text: str, on: date) -> Iterator[tuple[re.Match[str], str, date | None]]:
    """Each relative date in ``text`` that names a time: the match, its absolute wording
    and the single day it names (if one)."""
    for m in _RELATIVE.finditer(text):
        before = text[: m.start()]
        at_start = not before.strip() or before.rstrip().endswith((".", "!", "?", ";", ":"))
        if not at_start and m.group(0)[:1].isupper():
            continue  # a title: "Yesterday" by the Beatles
        if _NOT_A_DATE_BEFORE.search(before):
            continue  # a span, a habit or a comparison
        if at_start and _AS_SUBJECT.match(text, m.end()):
            continue  # "Yesterday was ..."
        wording, day = _resolve(m, on)
        yield m, wording, day


def absolute_dates(text: str, on: date) -> tuple[str, date | None]:
    """``text`` with its relative dates made absolute as of ``on``, and the first day
    one of them names as a start or a time (None when none does: "until tomorrow"
    names an end)."""
    parts: list[str] = []
    first: date | None = None
    done = 0
    for m, wording, day in _dates(text, on):
        prep = (m["prep"] or "").lower()
        if day is not None and first is None and prep not in _END_PREPOSITIONS:
            first = day
        if prep in _POINT_PREPOSITIONS:
            out = f"{m['prep']} {wording}"
        else:
            lead = "on" if day is not None or "weekend" in wording else "in"
            out = f"{lead} {wording}"
        before = text[: m.start()]
        if not before.strip() or before.rstrip().endswith((".", "!", "?", ";", ":")):
            out = out[0].upper() + out[1:]
        parts += [text[done : m.start()], out]
        done = m.end()
    return "".join(parts) + text[done:], first


def date_tokens(text: str, on: date) -> set[str]:
    """The absolute dates (2023-05-24, June 2023, 2022) the relative dates in ``text``
    stand for: a fact may name them although the text does not."""
    return {t for _, wording, _ in _dates(text, on) for t in _DATE_TOKEN.findall(wording)}
