"""The durable store: parts survive a crash, a torn index line is ignored, a restart resumes
in a new segment after a discontinuity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import m3u8

from ruang.hls.store import PartRecord, SpaceMediaStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PART = 24576


def write_parts(store: SpaceMediaStore, n: int, start: datetime = T0, disc: bool = False) -> None:
    for i in range(n):
        msn, index = store.next_position(new_run=disc and i == 0)
        data = f"part {msn}.{index}".encode()
        rec = PartRecord(
            msn, index, PART, len(data), start + timedelta(seconds=0.512 * i), disc and i == 0
        )
        store.add_part(rec, data)


def test_parts_segments_and_playlists(tmp_path: Path) -> None:
    store = SpaceMediaStore(tmp_path)
    write_parts(store, 10)
    assert (tmp_path / "0.m4s").read_bytes() == b"part 0.0part 0.1part 0.2part 0.3"
    live = m3u8.loads((tmp_path / "live.m3u8").read_text())
    assert live.preload_hint.uri == "2.2.m4s"
    replay = m3u8.loads((tmp_path / "replay.m3u8").read_text())
    assert replay.playlist_type == "event" and len(replay.segments) == 2
    store.end()
    replay = m3u8.loads((tmp_path / "replay.m3u8").read_text())
    assert replay.is_endlist and [s.uri for s in replay.segments] == ["0.m4s", "1.m4s", "2.m4s"]
    assert abs(sum(s.duration for s in replay.segments) - 10 * 0.512) < 1e-6


def test_recovery_after_a_crash(tmp_path: Path) -> None:
    store = SpaceMediaStore(tmp_path)
    write_parts(store, 6)
    with open(tmp_path / "index.jsonl", "a") as f:
        f.write('{"msn":1,"part":2,"sam')  # the crash tore the last line
    (tmp_path / "1.m4s").unlink(missing_ok=True)
    again = SpaceMediaStore(tmp_path)
    assert again.recover() == 6
    assert [len(s.parts) for s in again.segments] == [4, 2]
    assert all(s.complete for s in again.segments)
    assert (tmp_path / "1.m4s").read_bytes() == b"part 1.0part 1.1"  # rebuilt from its parts
    write_parts(again, 3, start=T0 + timedelta(seconds=60), disc=True)
    assert [s.msn for s in again.segments] == [0, 1, 2]
    assert again.segments[2].discontinuity
    again.end()
    replay = m3u8.loads((tmp_path / "replay.m3u8").read_text())
    assert [s.discontinuity for s in replay.segments] == [False, False, True]


def test_a_part_missing_on_disk_ends_the_recovered_replay(tmp_path: Path) -> None:
    store = SpaceMediaStore(tmp_path)
    write_parts(store, 5)
    (tmp_path / "1.0.m4s").write_bytes(b"torn")
    again = SpaceMediaStore(tmp_path)
    assert again.recover() == 4


def test_playlists_from_a_long_history_match_a_full_render(tmp_path: Path) -> None:
    """The store renders the live playlist from its last segments and the replay
    incrementally; both must read as if rendered from the whole history."""
    from ruang.hls.playlist import render_live, render_replay

    store = SpaceMediaStore(tmp_path / "s")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(80):  # 20 segments, a discontinuity (a restart) at segments 3 and 9
        msn, index = divmod(i, 4)
        rec = PartRecord(
            msn, index, 24_576, 3, t0 + timedelta(seconds=0.512 * i), msn in (3, 9) and index == 0
        )
        store.add_part(rec, b"abc")
    assert (tmp_path / "s" / "live.m3u8").read_text() == render_live(store.segments)
    assert (tmp_path / "s" / "replay.m3u8").read_text() == render_replay(
        store.segments, ended=False
    )
    store.end()
    assert (tmp_path / "s" / "live.m3u8").read_text() == render_live(store.segments, ended=True)
    assert (tmp_path / "s" / "replay.m3u8").read_text() == render_replay(store.segments, ended=True)
