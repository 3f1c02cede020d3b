"""The .ics reminder of a space is strict iCalendar and says when and where."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from icalcheck import parse_events, unescape
from ruang.delivery.calendar import calendar_text
from ruang.spaces.model import Space, State, clean_tags

WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
CREATED = datetime(2029, 12, 1, tzinfo=UTC)


def test_a_scheduled_space_is_one_event_at_its_start() -> None:
    title = "Kopi, jazz; and a very long title " + "é" * 60 + " \\ end"
    space = Space("abcdefghjk", title, State.SCHEDULED, CREATED, WHEN, tags=("jazz", "a,b"))
    text = calendar_text(space, "https://ruang.example/s/abcdefghjk")
    [event] = parse_events(text.encode())
    assert event["DTSTART"] == "20300102T030405Z"
    assert event["DTSTAMP"] == "20291201T000000Z"
    assert event["UID"] == "abcdefghjk@ruang.example"
    assert event["URL"] == "https://ruang.example/s/abcdefghjk"
    assert unescape(event["SUMMARY"]) == title
    assert event["CATEGORIES"] == "jazz,a\\,b"
    assert calendar_text(space, "https://ruang.example/s/abcdefghjk") == text  # cacheable


def test_a_live_space_starts_when_it_went_live() -> None:
    space = Space("abcdefghjk", "Now", State.LIVE, CREATED, None, WHEN)
    [event] = parse_events(calendar_text(space, "http://127.0.0.1:8000/s/abcdefghjk").encode())
    assert event["DTSTART"] == "20300102T030405Z" and "CATEGORIES" not in event


def test_the_checker_refuses_what_calendar_apps_refuse() -> None:
    space = Space("abcdefghjk", "T", State.SCHEDULED, CREATED, WHEN)
    good = calendar_text(space, "https://x.example/s/abcdefghjk")
    for bad in (
        good.replace("\r\n", "\n"),
        good.replace("END:VEVENT\r\n", ""),
        good.replace("DTSTART:20300102T030405Z\r\n", ""),
        good.replace("SUMMARY:T", "SUMMARY:" + "x" * 80),
    ):
        with pytest.raises(AssertionError):
            parse_events(bad.encode())


def test_tags_are_few_and_short() -> None:
    assert clean_tags(None) == ()
    assert clean_tags([" #Jazz ", "jazz", "", "talk  show"]) == ("Jazz", "talk show")
    for bad in ("jazz", [f"t{i}" for i in range(6)], [1], ["x" * 25]):
        with pytest.raises(ValueError):
            clean_tags(bad)
