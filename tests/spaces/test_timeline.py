"""The replay's timeline: turns and reactions placed on the replay through its segments, a
restart's gap left out, a torn journal line skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ruang.spaces.timeline import MAX_REACTION_BINS, timeline

T0 = 1_800_000_000.0  # the replay's first segment, Unix seconds


def pdt(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def playlist(starts: list[float], seg_s: float = 2.048) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:9", "#EXT-X-PLAYLIST-TYPE:EVENT"]
    for i, at in enumerate(starts):
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{pdt(at)}", f"#EXTINF:{seg_s:.3f},", f"{i}.m4s"]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def journal(*records: dict[str, object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_turns_follow_the_speaking_events_and_merge_short_pauses() -> None:
    pl = playlist([T0 + 2.048 * i for i in range(10)])  # 20.48 s without a gap
    j = journal(
        {"at": T0 + 1.0, "type": "speaking", "speakers": ["ann"]},
        {"at": T0 + 4.0, "type": "speaking", "speakers": []},
        {"at": T0 + 4.5, "type": "speaking", "speakers": ["ann"]},  # a pause: same turn
        {"at": T0 + 6.0, "type": "speaking", "speakers": ["ann", "bob"]},
        {"at": T0 + 8.0, "type": "speaking", "speakers": ["bob"]},
        {"at": T0 + 12.0, "type": "speaking", "speakers": ["ann", "bob"]},
        {"at": T0 + 12.1, "type": "speaking", "speakers": ["bob"]},  # a cough: dropped
    )
    got = timeline(j, pl)
    assert got["duration_s"] == 20.48
    assert got["turns"] == [
        {"speaker": "ann", "start_s": 1.0, "end_s": 8.0},
        {"speaker": "bob", "start_s": 6.0, "end_s": 20.48},  # still speaking at the end
    ]


def test_a_restart_gap_is_not_on_the_replay() -> None:
    # 5 segments, then the media process restarted: 30 s of wall clock missing, 5 more
    starts = [T0 + 2.048 * i for i in range(5)] + [T0 + 40 + 2.048 * i for i in range(5)]
    j = journal(
        {"at": T0 - 5, "type": "speaking", "speakers": ["early"]},  # before: at its start
        {"at": T0 + 41.0, "type": "speaking", "speakers": ["ann"]},
        {"at": T0 + 43.0, "type": "speaking", "speakers": []},
        {"at": T0 + 41.5, "type": "reaction", "counts": {"👏": 3}, "total": 3},
        {"at": T0 + 20.0, "type": "reaction", "counts": {"🔥": 2}, "total": 2},  # in the gap
    )
    got = timeline(j + b'{"at": 1800000050, "type": "speak', pl := playlist(starts))
    assert pl.count("#EXTINF") == 10
    assert got["turns"][0] == {"speaker": "early", "start_s": 0.0, "end_s": 11.24}
    assert {"speaker": "ann", "start_s": 11.24, "end_s": 13.24} in got["turns"]
    bins = got["reactions"]["bins"]
    assert [(b["t_s"], b["counts"]) for b in bins] == [(10.0, {"🔥": 2}), (11.0, {"👏": 3})]


def test_reactions_of_a_long_space_fit_a_bounded_number_of_bins() -> None:
    hours = 3
    n = int(hours * 3600 / 2.048)
    pl = playlist([T0 + 2.048 * i for i in range(n)])
    j = journal(
        *({"at": T0 + s, "type": "reaction", "counts": {"👏": 1}} for s in range(hours * 3600))
    )
    got = timeline(j, pl)["reactions"]
    assert len(got["bins"]) <= MAX_REACTION_BINS
    assert sum(b["total"] for b in got["bins"]) == hours * 3600
