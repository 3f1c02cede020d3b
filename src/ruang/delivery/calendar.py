"""A space as an iCalendar reminder (RFC 5545): one VEVENT, as pure text.

Everything in it is fixed once the space is created (id, title, start, creation time), so
the file is the same on every node and every request and can be cached like the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from ruang.spaces.model import Space

__all__ = ["ASSUMED_LENGTH", "REMIND_BEFORE", "calendar_text"]

ASSUMED_LENGTH = timedelta(hours=1)  # a space has no planned end: calendars get an hour
REMIND_BEFORE = timedelta(minutes=10)  # the VALARM fires this long before the start
_LINE_OCTETS = 75  # RFC 5545 3.1: lines longer than this (in octets) are folded


def _escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11): backslash, semicolon, comma, newline."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _stamp(when: datetime) -> str:
    """A UTC DATE-TIME, form 2 (``19980119T070000Z``)."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 3.1)."""
    out: list[str] = []
    current, size = "", 0
    limit = _LINE_OCTETS
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            out.append(current)
            current, size = " ", 1  # a continuation line starts with one space
            limit = _LINE_OCTETS
        current += ch
        size += n
    out.append(current)
    return "\r\n".join(out)


def calendar_text(space: Space, page_url: str) -> str:
    """The space's VCALENDAR: a VEVENT with UID (space id @ the site's host), DTSTAMP (its
    creation), DTSTART (the planned start, or when it went live), an hour's DURATION,
    SUMMARY (title), URL and DESCRIPTION (the listener page), CATEGORIES (its tags), and a
    reminder REMIND_BEFORE the start. Lines end in CRLF and are folded at 75 octets."""
    start = space.starts_at or space.started_at or space.created_at
    host = urlsplit(page_url).hostname or "ruang"
    description = f"Listen live: {page_url}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Ruang//Live audio spaces//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{space.id}@{host}",
        f"DTSTAMP:{_stamp(space.created_at)}",
        f"DTSTART:{_stamp(start)}",
        f"DURATION:PT{int(ASSUMED_LENGTH.total_seconds() // 60)}M",
        f"SUMMARY:{_escape(space.title)}",
        f"DESCRIPTION:{_escape(description)}",
        f"URL:{page_url}",
    ]
    if space.tags:
        lines.append("CATEGORIES:" + ",".join(_escape(t) for t in space.tags))
    lines += [
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{_escape(space.title)} starts soon",
        f"TRIGGER:-PT{int(REMIND_BEFORE.total_seconds() // 60)}M",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)
