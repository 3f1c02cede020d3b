"""A small strict iCalendar (RFC 5545) reader for the tests: enough to refuse what calendar
apps refuse (bare LF, long lines, unbalanced components, missing required properties)."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Z][A-Z0-9-]*$")
_UTC = re.compile(r"^\d{8}T\d{6}Z$")
_REQUIRED_EVENT = ("UID", "DTSTAMP", "DTSTART", "SUMMARY", "URL")


def unescape(value: str) -> str:
    """TEXT value unescaping (RFC 5545 3.3.11)."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def parse_events(data: bytes) -> list[dict[str, str]]:
    """The VEVENTs of a VCALENDAR as {name: raw value}; AssertionError on anything malformed."""
    text = data.decode("utf-8")
    assert text.endswith("\r\n"), "the file must end with CRLF"
    raw_lines = text[:-2].split("\r\n")
    assert all("\n" not in line and "\r" not in line for line in raw_lines), "bare CR or LF"
    for line in raw_lines:
        assert len(line.encode()) <= 75, f"line over 75 octets: {line!r}"
    lines: list[str] = []
    for line in raw_lines:  # unfold
        if line.startswith((" ", "\t")):
            assert lines, "a continuation line first"
            lines[-1] += line[1:]
        else:
            lines.append(line)
    stack: list[str] = []
    events: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in lines:
        name_params, sep, value = line.partition(":")
        assert sep, f"no colon: {line!r}"
        name = name_params.split(";", 1)[0]
        assert _NAME.match(name), f"bad property name {name!r}"
        if name == "BEGIN":
            stack.append(value)
            if value == "VEVENT":
                current = {}
        elif name == "END":
            assert stack and stack[-1] == value, f"END:{value} does not close {stack}"
            stack.pop()
            if value == "VEVENT":
                assert current is not None
                events.append(current)
                current = None
        elif current is not None and stack[-1] == "VEVENT":
            assert name not in current, f"{name} twice in a VEVENT"
            current[name] = value
        else:
            assert stack, f"{name} outside VCALENDAR"
    assert not stack, f"unclosed {stack}"
    assert (
        lines[0] == "BEGIN:VCALENDAR"
        and "VERSION:2.0" in lines
        and any(line.startswith("PRODID:") for line in lines)
    ), "VCALENDAR needs VERSION and PRODID"
    for event in events:
        missing = [p for p in _REQUIRED_EVENT if p not in event]
        assert not missing, f"VEVENT without {missing}"
        for p in ("DTSTAMP", "DTSTART"):
            assert _UTC.match(event[p]), f"{p} {event[p]!r} is not a UTC date-time"
    return events
