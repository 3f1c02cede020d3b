"""WebVTT text (W3C WebVTT): the captions file's header, its cues, and a parser for checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

CAPTIONS_FILE = "captions.vtt"  # in the space's media folder, beside its parts
HEADER = "WEBVTT\n\n"
END_NOTE = "NOTE end of captions\n\n"  # written once the space ended and its last cue is in
_TIME = r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})"
_TIMING = re.compile(rf"^{_TIME} --> {_TIME}")


def timestamp(seconds: float) -> str:
    """`HH:MM:SS.mmm` for a time in seconds (negative times are 0)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def cue_text(start: float, end: float, text: str) -> str:
    """One cue block. A cue's text may not hold "-->" or a blank line: both are flattened."""
    clean = " ".join(text.replace("-->", "->").split())
    return f"{timestamp(start)} --> {timestamp(end)}\n{clean}\n\n"


@dataclass(frozen=True, slots=True)
class Cue:
    """A parsed cue: times in seconds and its text."""

    start: float
    end: float
    text: str


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse(text: str) -> list[Cue]:
    """The cues of a WebVTT file; ValueError if the header or a timing line is wrong."""
    if not (text.startswith("WEBVTT") and text[6:7] in ("", "\n", " ", "\t", "\r")):
        raise ValueError(f"not WebVTT: it starts with {text[:20]!r}")
    cues = []
    for block in text.replace("\r\n", "\n").split("\n\n")[1:]:
        lines = [line for line in block.split("\n") if line]
        if not lines or lines[0].startswith("NOTE"):
            continue
        if "-->" not in lines[0] and len(lines) > 1:
            lines = lines[1:]  # a cue identifier
        match = _TIMING.match(lines[0])
        if match is None:
            raise ValueError(f"bad cue timing line {lines[0]!r}")
        g = match.groups()
        cues.append(Cue(_seconds(*g[:4]), _seconds(*g[4:]), " ".join(lines[1:])))
    return cues
