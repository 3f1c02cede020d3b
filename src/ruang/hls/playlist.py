"""LL-HLS and replay media-playlist text (RFC 8216bis), as pure functions.

Layout facts this module relies on: a part is 24 AAC frames (24576 samples at
48 kHz = 0.512 s), a segment is 4 parts (2.048 s) except possibly the last one
of a space. URIs are relative and fixed: ``init.mp4``, ``{msn}.{part}.m4s`` and
``{msn}.m4s``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "HOLD_BACK",
    "INIT_URI",
    "PARTS_PER_SEGMENT",
    "PART_HOLD_BACK",
    "PART_TARGET",
    "TARGET_DURATION",
    "Part",
    "Segment",
    "next_part",
    "parse_next_part",
    "ReplayLines",
    "render_live",
    "render_replay",
]

PART_TARGET = 0.512  # s, EXT-X-PART-INF PART-TARGET (24 AAC frames at 48 kHz)
PARTS_PER_SEGMENT = 4  # parts in a full segment
TARGET_DURATION = 2  # s, EXT-X-TARGETDURATION (a 2.048 s segment rounds to 2)
# RFC 8216bis 4.4.3.8: PART-HOLD-BACK MUST be >= 2 x PART-TARGET (3 x recommended).
PART_HOLD_BACK = 3 * PART_TARGET  # s, 1.536
# RFC 8216bis 4.4.3.8: HOLD-BACK MUST be >= 3 x TARGETDURATION; use 3 full segments.
HOLD_BACK = 3 * PARTS_PER_SEGMENT * PART_TARGET  # s, 6.144
# RFC 8216bis 6.2.2: keep EXT-X-PART tags for segments within ~3 target durations of the edge.
PART_LISTING_SPAN = 3 * TARGET_DURATION  # s
INIT_URI = "init.mp4"

_LIVE_VERSION = 9  # EXT-X-VERSION for LL-HLS playlists
_REPLAY_VERSION = 6  # EXT-X-VERSION needed for EXT-X-MAP in a media playlist
_EPSILON = 1e-6  # s, tolerance when comparing float durations
_PRELOAD_HINT = "#EXT-X-PRELOAD-HINT:"
_PART_URI_RE = re.compile(r'URI="(\d+)\.(\d+)\.m4s"')


@dataclass(frozen=True, slots=True)
class Part:
    """One partial segment: media sequence number, index within the segment, seconds."""

    msn: int
    index: int
    duration: float  # s

    @property
    def uri(self) -> str:
        """Relative URI of the part file, ``{msn}.{index}.m4s``."""
        return f"{self.msn}.{self.index}.m4s"


@dataclass(slots=True)
class Segment:
    """One media segment; ``complete`` is False while parts are still being appended."""

    msn: int
    program_date_time: datetime  # tz-aware, wall clock of the first sample
    parts: list[Part]
    complete: bool
    discontinuity: bool = False

    def __post_init__(self) -> None:
        if self.program_date_time.utcoffset() is None:
            raise ValueError(f"segment {self.msn}: program_date_time must be timezone-aware")

    @property
    def duration(self) -> float:
        """Sum of the part durations, in seconds."""
        return sum(p.duration for p in self.parts)

    @property
    def uri(self) -> str:
        """Relative URI of the whole-segment file, ``{msn}.m4s``."""
        return f"{self.msn}.m4s"


def _fmt_duration(seconds: float) -> str:
    """Format a duration in seconds with exactly 3 decimals."""
    return f"{seconds:.3f}"


def _fmt_pdt(when: datetime) -> str:
    """Format a tz-aware datetime as ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    # Adding half a millisecond, then dropping the sub-millisecond digits, rounds to nearest.
    utc = when.astimezone(UTC) + timedelta(microseconds=500)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _rounded(seconds: float) -> int:
    """Round a duration to the nearest integer, halves up (RFC 8216bis 4.4.3.1)."""
    return math.floor(seconds + 0.5)


def next_part(segments: Sequence[Segment]) -> tuple[int, int]:
    """Return ``(msn, index)`` of the part that will be published next.

    Promises: ``(0, 0)`` for no segments; the next index of the last segment if it
    is incomplete; otherwise part 0 of the segment after the last one.
    """
    if not segments:
        return (0, 0)
    last = segments[-1]
    if not last.complete:
        return (last.msn, len(last.parts))
    return (last.msn + 1, 0)


def _check_live(segments: Sequence[Segment], ended: bool) -> None:
    """Raise ValueError if the segments cannot be rendered as a valid live playlist."""
    for i, seg in enumerate(segments):
        if not seg.complete and (ended or i != len(segments) - 1):
            where = "in an ended playlist" if ended else "before the last position"
            raise ValueError(f"segment {seg.msn} is incomplete {where}")
        if i and seg.msn != segments[i - 1].msn + 1:
            raise ValueError(f"segment {seg.msn} does not follow {segments[i - 1].msn}")
        if seg.complete and not seg.parts:
            raise ValueError(f"segment {seg.msn} is complete but has no parts")
        if _rounded(seg.duration) > TARGET_DURATION:
            raise ValueError(f"segment {seg.msn} lasts {seg.duration:.3f} s > target duration")
        for part in seg.parts:
            if part.msn != seg.msn:
                raise ValueError(f"part {part.uri} listed under segment {seg.msn}")
            if not 0 < part.duration <= PART_TARGET + _EPSILON:
                raise ValueError(f"part {part.uri} lasts {part.duration} s, not in (0, 0.512]")


def _segment_lines(seg: Segment, *, with_parts: bool) -> list[str]:
    """Return the playlist lines for one segment (parts only if ``with_parts``)."""
    lines: list[str] = []
    if seg.discontinuity:
        lines.append("#EXT-X-DISCONTINUITY")
    lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_fmt_pdt(seg.program_date_time)}")
    if with_parts:
        lines.extend(
            f'#EXT-X-PART:DURATION={_fmt_duration(p.duration)},URI="{p.uri}",INDEPENDENT=YES'
            for p in seg.parts
        )
    if seg.complete:
        lines.append(f"#EXTINF:{_fmt_duration(seg.duration)},")
        lines.append(seg.uri)
    return lines


def render_live(
    segments: Sequence[Segment],
    *,
    window: int = 6,
    ended: bool = False,
    earlier_discontinuities: int = 0,
) -> str:
    """Render the LL-HLS live media playlist for the last ``window`` segments.

    Promises (RFC 8216bis): version 9; TARGETDURATION 2; PART-INF with PART-TARGET
    0.512; SERVER-CONTROL with CAN-BLOCK-RELOAD=YES, PART-HOLD-BACK 1.536 (>= 2 x
    part target) and HOLD-BACK 6.144 (>= 3 x target duration); MEDIA-SEQUENCE is
    the msn of the first segment in the window (an incomplete trailing segment
    counts), or of the next part if there are no segments; DISCONTINUITY-SEQUENCE
    counts discontinuities that scrolled out of the window and is written only
    when non-zero; every listed segment carries its PROGRAM-DATE-TIME (UTC, ms).
    EXT-X-PART tags are listed for segments that end less than 6 s (3 target
    durations) before the live edge; complete segments get EXTINF and their URI; the
    incomplete trailing segment lists only its parts (nothing if it has none).
    Live playlists end with a PRELOAD-HINT for :func:`next_part`; ended ones end
    with EXT-X-ENDLIST instead. Keep ``window`` >= 4 so the playlist spans at least
    3 target durations.

    A caller that keeps a long history passes only its last segments (at least
    ``window``) and the number of discontinuities before them as
    ``earlier_discontinuities``, so rendering costs the same after hours as after seconds.

    Raises ValueError if ``window`` < 1, if a segment other than a live trailing
    one is incomplete, if msns are not consecutive, or if a duration exceeds its
    target.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    _check_live(segments, ended)
    shown = list(segments[-window:])
    dropped = segments[: len(segments) - len(shown)]
    media_sequence = shown[0].msn if shown else next_part(segments)[0]
    discontinuity_sequence = earlier_discontinuities + sum(1 for s in dropped if s.discontinuity)

    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{_LIVE_VERSION}",
        f"#EXT-X-TARGETDURATION:{TARGET_DURATION}",
        f"#EXT-X-PART-INF:PART-TARGET={_fmt_duration(PART_TARGET)}",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"PART-HOLD-BACK={_fmt_duration(PART_HOLD_BACK)},HOLD-BACK={_fmt_duration(HOLD_BACK)}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
    ]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines.append(f'#EXT-X-MAP:URI="{INIT_URI}"')

    # Walk back from the live edge to find which segments still list their parts.
    with_parts = [False] * len(shown)
    behind_edge = 0.0  # s between a segment's end and the live edge
    for i in range(len(shown) - 1, -1, -1):
        with_parts[i] = behind_edge < PART_LISTING_SPAN - _EPSILON
        behind_edge += shown[i].duration

    for seg, parts in zip(shown, with_parts, strict=True):
        if seg.parts:
            lines.extend(_segment_lines(seg, with_parts=parts))

    if ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        msn, index = next_part(segments)
        lines.append(f'{_PRELOAD_HINT}TYPE=PART,URI="{msn}.{index}.m4s"')
    return "\n".join(lines) + "\n"


def render_replay(segments: Sequence[Segment], *, ended: bool) -> str:
    """Render the replay (DVR) media playlist of every complete segment, from the first.

    Promises: version 6; PLAYLIST-TYPE VOD with EXT-X-ENDLIST when ``ended``, else
    EVENT without ENDLIST (the playlist only grows); TARGETDURATION is the largest
    rounded segment duration, at least 2; MEDIA-SEQUENCE is the first listed msn;
    every segment has its discontinuity tag (if any), PROGRAM-DATE-TIME, EXTINF
    and URI; no part tags. Incomplete segments are left out.
    """
    replay = ReplayLines()
    for seg in segments:
        replay.add(seg)
    return replay.render(ended=ended)


class ReplayLines:
    """The replay playlist kept as it grows: each complete segment is rendered once, when it
    is added, so rendering the whole replay does not cost more as a space goes on."""

    def __init__(self) -> None:
        self.first_msn: int | None = None
        self.target = TARGET_DURATION
        self._body: list[str] = []

    def add(self, seg: Segment) -> None:
        """Append a segment (ignored unless complete and not empty)."""
        if not (seg.complete and seg.parts):
            return
        if self.first_msn is None:
            self.first_msn = seg.msn
        self.target = max(self.target, _rounded(seg.duration))
        self._body.extend(_segment_lines(seg, with_parts=False))

    def render(self, *, ended: bool) -> str:
        """The playlist text (as `render_replay` promises)."""
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{_REPLAY_VERSION}",
            f"#EXT-X-TARGETDURATION:{self.target}",
            f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.first_msn or 0}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="{INIT_URI}"',
            *self._body,
        ]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def parse_next_part(playlist_text: str) -> tuple[int, int] | None:
    """Read ``(msn, index)`` back from the last PRELOAD-HINT of a playlist.

    Promises: cheap (one ``rfind`` near the end); returns None when the playlist
    has no preload hint (e.g. it has ended) or the hint URI is not ``{msn}.{part}.m4s``.
    """
    start = playlist_text.rfind(_PRELOAD_HINT)
    if start < 0:
        return None
    end = playlist_text.find("\n", start)
    match = _PART_URI_RE.search(playlist_text, start, len(playlist_text) if end < 0 else end)
    if match is None:
        return None
    return (int(match.group(1)), int(match.group(2)))
