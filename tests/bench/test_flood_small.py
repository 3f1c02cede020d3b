"""`ruang bench flood`, briefly: 50 listeners arrive over 3 s at a server that admits 10 per
second, so a line forms. Everyone must get in, in the order they arrived, with no 5xx, and
then play with (almost) no stalls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ruang_bench.flood import arrival_times, fifo_check, source_address
from ruang_bench.player import PlayerBuffer, parse_live

ROOT = Path(__file__).resolve().parents[2]


def test_flood_small_surge_waits_in_fifo_order_and_plays(tmp_path: Path) -> None:
    out, records, png = tmp_path / "flood.json", tmp_path / "records.json", tmp_path / "f.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruang_bench",
            "flood",
            "--listeners=50",
            "--ramp-s=3",
            "--duration-s=8",
            "--sources=20",
            "--server-arg=--joins-per-s=10",
            f"--out={out}",
            f"--records={records}",
            f"--plot={png}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    joins, playback, requests = result["joins"], result["playback"], result["requests"]

    assert result["arrivals"] == 50
    assert joins["admitted"] == 50, joins
    assert joins["waited"] > 0, "the line never formed: the test proves nothing about FIFO"
    assert joins["fifo"]["violations"] == 0, joins["fifo"]
    assert joins["fifo"]["queue_number_inversions"] == 0, joins["fifo"]
    assert requests["status_5xx"] == 0 and requests["timeouts"] == 0, requests
    assert requests["errors"] == 0, requests["error_kinds"]
    assert playback["playing"] == 50
    assert playback["stall_ratio_mean"] is not None and playback["stall_ratio_mean"] < 0.05
    assert playback["parts_on_time_share"] > 0.9
    assert len(result["timeline"]["t"]) == 8
    assert sum(result["timeline"]["arrivals"]) == 50

    # the admission order, recorded per listener: by queue number, each 200 came at most one
    # retry round (Retry-After, whole seconds) after the one before it
    doc = json.loads(records.read_text())
    rows = [dict(zip(doc["fields"], r, strict=True)) for r in doc["listeners"]]
    by_number = sorted((r for r in rows if r["queue_n"] >= 0), key=lambda r: r["queue_n"])
    assert len({r["queue_n"] for r in by_number}) == len(by_number) == joins["waited"]
    admitted = [r["admitted"] for r in by_number]
    assert all(b >= a - 1.05 for a, b in zip(admitted, admitted[1:], strict=False)), admitted
    if png.exists():
        assert png.stat().st_size > 10_000


def test_arrivals_sources_and_fifo_rule() -> None:
    uniform = arrival_times(4, 2.0, "uniform")
    assert uniform == [0.0, 0.5, 1.0, 1.5]
    ramp = arrival_times(100, 10.0, "ramp")
    assert ramp[0] == 0.0 and ramp[-1] < 10.0
    assert sum(1 for t in ramp if t < 5.0) == 25  # rate rising linearly: a quarter by T/2
    poisson = arrival_times(1000, 10.0, "poisson", seed=3)
    assert poisson == sorted(poisson) and 8.0 < poisson[-1] < 12.0
    assert source_address(0, 1) == "127.1.0.1"
    assert source_address(257, 1) == "127.2.1.1"
    assert source_address(5, 4) == "127.1.1.2"
    # L arrived (answer back at 0.2) before M sent its first join (0.3); M got in at 1.0, and
    # L was told to wait on a request sent at 1.1: a violation
    row = {"first_sent": 0.1, "first_recv": 0.2, "first_wait": 0.2, "queue_n": 0}
    late = {"first_sent": 0.3, "first_recv": 0.4, "first_wait": -1, "queue_n": -1}
    ok = fifo_check(
        [
            {**row, "last_wait_sent": 0.9, "admitted": 1.2},
            {**late, "last_wait_sent": -1, "admitted": 1.0},
        ]
    )
    assert ok["violations"] == 0
    bad = fifo_check(
        [
            {**row, "last_wait_sent": 1.1, "admitted": 2.2},
            {**late, "last_wait_sent": -1, "admitted": 1.0},
        ]
    )
    assert bad["violations"] == 1


def test_player_buffer_and_playlist_tail() -> None:
    b = PlayerBuffer(1.5)
    for t in (0.0, 0.01, 0.02):
        b.add(t, 0.512)  # the start buffer: three parts at once
    assert b.playing_since == 0.02 and b.before_play == 3
    b.add(0.5, 0.512)  # on time
    b.add(2.5, 0.512)  # the buffer ran dry at 0.02 + 2.048 = 2.068
    assert b.on_time == 1 and b.late == 1 and b.stalls == 1
    assert abs(b.stall_s - (2.5 - 2.068)) < 1e-9
    assert abs(b.played_s(2.5) - (2.5 - 0.02 - b.stall_s)) < 1e-9

    text = (
        b'#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-PART:DURATION=0.512,URI="7.0.m4s"\n'
        b'#EXT-X-PART:DURATION=0.512,URI="7.1.m4s"\n#EXT-X-PART:DURATION=0.512,URI="7.2.m4s"\n'
        b'#EXT-X-PART:DURATION=0.512,URI="7.3.m4s"\n#EXTINF:2.048,\n7.m4s\n'
        b'#EXT-X-PART:DURATION=0.5,URI="8.0.m4s"\n'
        b'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="8.1.m4s"\n'
    )
    parts, hint, found = parse_live(text)
    assert [p[0] for p in parts] == [(7, 0), (7, 1), (7, 2), (7, 3), (8, 0)] and not found
    assert hint == ((8, 1), "8.1.m4s")
    tail, hint2, found = parse_live(text, ((7, 2), "7.2.m4s"))
    assert found and tail == [((7, 3), "7.3.m4s", 0.512), ((8, 0), "8.0.m4s", 0.5)]
    assert hint2 == hint
    gone, _, found = parse_live(text, ((6, 3), "6.3.m4s"))
    assert not found and len(gone) == 5
