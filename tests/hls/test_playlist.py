"""Tests for ruang.hls.playlist: LL-HLS live and replay playlists, checked with the m3u8 parser."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import m3u8
import pytest

from ruang.hls.playlist import (
    PART_TARGET,
    PARTS_PER_SEGMENT,
    TARGET_DURATION,
    Part,
    Segment,
    next_part,
    parse_next_part,
    render_live,
    render_replay,
)

START = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
SEGMENT_SECONDS = PARTS_PER_SEGMENT * PART_TARGET  # s, 2.048


def make_segments(
    complete: int,
    trailing_parts: int | None = None,
    *,
    discontinuities: frozenset[int] = frozenset(),
    last_parts: int = PARTS_PER_SEGMENT,
) -> list[Segment]:
    """`complete` full segments from msn 0 (the last one has `last_parts` parts), then
    optionally an incomplete segment with `trailing_parts` parts."""
    segments = []
    t = START
    total = complete + (trailing_parts is not None)
    for msn in range(total):
        is_complete = msn < complete
        if is_complete:
            n = last_parts if msn == complete - 1 else PARTS_PER_SEGMENT
        else:
            n = trailing_parts or 0
        parts = [Part(msn, i, PART_TARGET) for i in range(n)]
        segments.append(Segment(msn, t, parts, is_complete, msn in discontinuities))
        t += timedelta(seconds=n * PART_TARGET)
    return segments


def load(text: str) -> m3u8.M3U8:
    """Parse strictly (unknown or malformed lines raise), then build the m3u8 model."""
    m3u8.parse(text, strict=True)
    return m3u8.loads(text)


def rounded(x: float) -> int:
    return math.floor(x + 0.5)


def check_common(pl: m3u8.M3U8, text: str, *, ended: bool) -> None:
    """Invariants shared by every playlist this module renders."""
    assert text.startswith("#EXTM3U\n") and text.endswith("\n")
    assert pl.target_duration == TARGET_DURATION
    for seg in pl.segments:
        if seg.uri is not None:
            assert rounded(seg.duration) <= pl.target_duration
            assert text.count(f"#EXTINF:{seg.duration:.3f},\n{seg.uri}\n") == 1
    assert pl.is_endlist is ended
    assert ("#EXT-X-ENDLIST" in text) is ended
    assert pl.segment_map[0].uri == "init.mp4"
    # PDT present on every segment, strictly increasing, ISO 8601 with ms and Z
    pdt_lines = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
    assert len(pdt_lines) == len(pl.segments)
    stamps = [datetime.fromisoformat(ln.split(":", 1)[1]) for ln in pdt_lines]
    assert all(ln.endswith("Z") and len(ln.split(".")[-1]) == 4 for ln in pdt_lines)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def check_live(text: str, segments: list[Segment], *, window: int, ended: bool) -> m3u8.M3U8:
    """Parse a live playlist and assert the RFC 8216bis LL-HLS constraints."""
    pl = load(text)
    check_common(pl, text, ended=ended)
    assert pl.version == 9
    part_target = pl.part_inf.part_target
    assert part_target == PART_TARGET
    sc = pl.server_control
    assert sc.can_block_reload == "YES"
    assert sc.part_hold_back >= 2 * part_target
    assert sc.hold_back >= 3 * pl.target_duration
    shown = segments[-window:]
    assert (pl.media_sequence or 0) == (shown[0].msn if shown else 0)
    dropped = segments[: len(segments) - len(shown)]
    assert (pl.discontinuity_sequence or 0) == sum(s.discontinuity for s in dropped)
    listed = [s for s in shown if s.parts]
    assert len(pl.segments) == len(listed)
    for parsed, seg in zip(pl.segments, listed, strict=True):
        assert parsed.discontinuity == seg.discontinuity
        assert parsed.uri == (seg.uri if seg.complete else None)
        for part in parsed.parts:
            assert part.duration <= part_target
            assert part.independent == "YES"
        if parsed.parts:
            assert [p.uri for p in parsed.parts] == [p.uri for p in seg.parts]
    # Parts are listed for at least PART-HOLD-BACK worth of media at the live edge.
    parted = sum(p.duration for s in pl.segments for p in s.parts)
    assert parted >= min(sc.part_hold_back, sum(s.duration for s in shown)) - 1e-9
    if ended:
        assert pl.preload_hint is None
        assert parse_next_part(text) is None
    else:
        assert pl.preload_hint.hint_type == "PART"
        msn, index = next_part(segments)
        assert pl.preload_hint.uri == f"{msn}.{index}.m4s"
        assert parse_next_part(text) == (msn, index)
    return pl


def test_empty_space_has_header_and_preload_hint() -> None:
    text = render_live([])
    pl = check_live(text, [], window=6, ended=False)
    assert pl.segments == []
    assert parse_next_part(text) == (0, 0)
    assert text.rstrip().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="0.0.m4s"')


def test_golden_live_playlist() -> None:
    segments = make_segments(1, trailing_parts=2)
    assert render_live(segments) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:9\n"
        "#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-PART-INF:PART-TARGET=0.512\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.536,HOLD-BACK=6.144\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXT-X-PROGRAM-DATE-TIME:2026-03-04T05:06:07.890Z\n"
        '#EXT-X-PART:DURATION=0.512,URI="0.0.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PART:DURATION=0.512,URI="0.1.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PART:DURATION=0.512,URI="0.2.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PART:DURATION=0.512,URI="0.3.m4s",INDEPENDENT=YES\n'
        "#EXTINF:2.048,\n"
        "0.m4s\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-03-04T05:06:09.938Z\n"
        '#EXT-X-PART:DURATION=0.512,URI="1.0.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PART:DURATION=0.512,URI="1.1.m4s",INDEPENDENT=YES\n'
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1.2.m4s"\n'
    )


@pytest.mark.parametrize("complete", range(0, 13))
@pytest.mark.parametrize("trailing", [None, 0, 1, 3])
def test_live_window_slides(complete: int, trailing: int | None) -> None:
    segments = make_segments(complete, trailing)
    text = render_live(segments, window=6)
    check_live(text, segments, window=6, ended=False)


def test_media_sequence_after_slide() -> None:
    segments = make_segments(10, trailing_parts=2)
    pl = check_live(render_live(segments, window=6), segments, window=6, ended=False)
    assert pl.media_sequence == 5
    assert [s.uri for s in pl.segments] == ["5.m4s", "6.m4s", "7.m4s", "8.m4s", "9.m4s", None]
    assert parse_next_part(render_live(segments)) == (10, 2)


def test_parts_only_near_live_edge() -> None:
    segments = make_segments(10)
    pl = load(render_live(segments, window=8))
    with_parts = [s.uri for s in pl.segments if s.parts]
    assert with_parts == ["7.m4s", "8.m4s", "9.m4s"]  # last 3 x 2.048 s >= 3 target durations
    segments = make_segments(10, trailing_parts=1)
    pl = load(render_live(segments, window=8))
    assert [len(s.parts) for s in pl.segments] == [0, 0, 0, 0, 4, 4, 4, 1]


def test_discontinuity_sequence_counts_scrolled_out_tags() -> None:
    segments = make_segments(12, trailing_parts=1, discontinuities=frozenset({2, 8}))
    for keep in range(1, len(segments) + 1):
        text = render_live(segments[:keep], window=4)
        check_live(text, segments[:keep], window=4, ended=False)
    text = render_live(segments[:10], window=4)  # msn 6..9: the tag on 2 scrolled out
    pl = load(text)
    assert pl.discontinuity_sequence == 1
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    text = render_live(segments, window=4)  # msn 9..12: both scrolled out
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2\n" in text
    assert "#EXT-X-DISCONTINUITY\n" not in text
    assert "DISCONTINUITY" not in render_live(segments[:2], window=6)


def test_ended_live_playlist() -> None:
    segments = make_segments(9, last_parts=2)
    text = render_live(segments, ended=True)
    pl = check_live(text, segments, window=6, ended=True)
    assert pl.segments[-1].duration == pytest.approx(1.024)
    assert "#EXTINF:1.024,\n8.m4s\n" in text
    assert "PRELOAD-HINT" not in text
    assert "#EXT-X-ENDLIST" in render_live([], ended=True)
    with pytest.raises(ValueError, match="incomplete"):
        render_live(make_segments(3, trailing_parts=2), ended=True)


def test_complete_last_segment_hints_next_msn() -> None:
    segments = make_segments(3)
    assert next_part(segments) == (3, 0)
    assert parse_next_part(render_live(segments)) == (3, 0)
    segments = make_segments(3, trailing_parts=0)
    text = render_live(segments)
    assert parse_next_part(text) == (3, 0)
    assert load(text).media_sequence == 0
    text = render_live(segments, window=1)  # the empty trailing segment fills the window
    pl = check_live(text, segments, window=1, ended=False)
    assert (pl.media_sequence, pl.segments) == (3, [])
    assert next_part([]) == (0, 0)


def test_program_date_time_formatting() -> None:
    plus_two = timezone(timedelta(hours=2))
    seg = Segment(
        0, datetime(2026, 1, 1, 2, 0, 0, 123_456, tzinfo=plus_two), [Part(0, 0, 0.5)], True
    )
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.123Z\n" in render_replay([seg], ended=True)
    seg = Segment(0, datetime(2026, 12, 31, 23, 59, 59, 999_600, tzinfo=UTC), seg.parts, True)
    assert "#EXT-X-PROGRAM-DATE-TIME:2027-01-01T00:00:00.000Z\n" in render_live([seg])
    with pytest.raises(ValueError, match="timezone-aware"):
        Segment(0, datetime(2026, 1, 1), [], False)


@pytest.mark.parametrize("ended", [True, False])
def test_replay_playlist(ended: bool) -> None:
    segments = make_segments(7, trailing_parts=3, discontinuities=frozenset({3}))
    if ended:
        segments = segments[:-1]
    text = render_replay(segments, ended=ended)
    pl = load(text)
    check_common(pl, text, ended=ended)
    assert pl.version == 6
    assert pl.playlist_type == ("vod" if ended else "event")
    assert (pl.media_sequence or 0) == 0
    assert [s.uri for s in pl.segments] == [f"{i}.m4s" for i in range(7)]
    assert all(s.parts == [] for s in pl.segments)
    assert [s.discontinuity for s in pl.segments] == [i == 3 for i in range(7)]
    assert "PART" not in text and "PRELOAD-HINT" not in text
    assert parse_next_part(text) is None


def test_replay_empty_and_long_segments() -> None:
    assert load(render_replay([], ended=False)).segments == []
    parts = [Part(0, i, 0.9) for i in range(4)]  # 3.6 s rounds to 4
    text = render_replay([Segment(0, START, parts, True)], ended=True)
    assert load(text).target_duration == 4


def test_live_rejects_invalid_input() -> None:
    with pytest.raises(ValueError, match="window"):
        render_live([], window=0)
    with pytest.raises(ValueError, match="incomplete"):
        render_live([*make_segments(2, trailing_parts=1), *make_segments(3)[2:]])
    gap = make_segments(4)
    del gap[1]
    with pytest.raises(ValueError, match="does not follow"):
        render_live(gap)
    with pytest.raises(ValueError, match="lasts"):
        render_live([Segment(0, START, [Part(0, 0, 0.6)], True)])
    with pytest.raises(ValueError, match="listed under"):
        render_live([Segment(0, START, [Part(1, 0, 0.5)], True)])


def test_parse_next_part_edge_cases() -> None:
    assert parse_next_part("") is None
    assert parse_next_part("#EXTM3U\n#EXT-X-ENDLIST\n") is None
    assert parse_next_part('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="x.m4s"') is None
    assert parse_next_part('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="12.3.m4s"') == (12, 3)
    hint = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="1.0.m4s"\n'
    assert parse_next_part(hint + hint.replace("1.0", "41.2")) == (41, 2)


def test_part_and_segment_properties() -> None:
    part = Part(7, 2, PART_TARGET)
    assert part.uri == "7.2.m4s"
    seg = Segment(7, START, [Part(7, i, PART_TARGET) for i in range(4)], True)
    assert seg.uri == "7.m4s"
    assert seg.duration == pytest.approx(SEGMENT_SECONDS)
