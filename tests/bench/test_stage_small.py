"""`ruang bench stage`, briefly: one stage of 3 people for a few seconds against a real server.
The JSON must hold every figure the full run reports, each plausible; no capacity or timing
threshold is asserted (the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ruang_bench.signals import Bursts, find_onsets, highpass
from ruang_bench.stagefigures import capacity
from ruang_bench.talk import all_talking, conversation, is_talking, talkers_at_once
from ruang_bench.tools.tones import SAMPLE_RATE, sine

ROOT = Path(__file__).resolve().parents[2]


def test_stage_small_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "stage.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruang_bench",
            "stage",
            "--speakers=3",
            "--max-stages=1",
            "--idle-spaces=2",
            "--settle=2",
            "--window=4",
            "--idle-window=3",
            "--baseline-bursts=3",
            f"--out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    result = doc["result"]
    assert doc["bench"] == "stage" and doc["summary"].startswith("stage (conversation): ")
    assert result["pattern"] == "conversation" and result["people_per_stage"] == 3
    assert result["stopped_because"], result

    # the server is a tree of processes (today: media process + one delivery worker), all counted
    empty = result["empty_server"]
    assert len(empty["server_processes"]) >= 2, empty["server_processes"]
    whole = sum(p["cores"] for p in empty["server_processes"])
    assert abs(whole - empty["server_cores"]) < 0.01, empty

    idle = result["idle"]
    assert idle["spaces"] == 2 and idle["refused"] == "", idle
    assert idle["ticks"] > 0.5 * idle["expected_ticks"] > 0, idle  # both clocks ran
    assert idle["late_ticks"] >= 0 and len(idle["late_ticks_by_space"]) == 2
    assert "cores_per_space" in idle

    assert len(result["ramp"]) == 1
    step = result["ramp"][0]
    assert step["stages"] == 1 and step["people_on_stage"] == 3
    assert step["server_cores"] > 0 and step["speakers_cores"] > 0, step
    assert step["ticks"] > 0.5 * step["expected_ticks"] > 0, step
    assert step["late_ticks"] == sum(step["late_ticks_by_space"]) >= 0
    assert step["talkers_at_once"]["max"] <= 2
    speakers = step["speakers"]
    assert speakers["frames"] > 0 and speakers["return_frames"] > 0, speakers
    assert 0 < speakers["return_sound_share"] <= 1, speakers  # somebody was heard
    s2s = step["s2s"]
    assert s2s["bursts_sent"] >= 1 and s2s["bursts_timed"] >= 1, s2s
    assert 0 < s2s["through_server_s"]["p50"] < 1.5, s2s  # within one burst period
    assert 0 < result["direct_aiortc_s"]["p50"] < s2s["through_server_s"]["p50"]
    assert "added_by_server_s" in s2s

    cap = result["capacity"]
    assert cap["clean_stages"] == (1 if step["late_ticks"] == 0 else 0)
    assert cap["good_stages"] <= cap["clean_stages"]
    assert 0 < speakers["return_share"] <= 1.05, speakers  # the mix-minus came back
    assert "others_cores" in result["machine_load"]


def test_conversation_has_at_most_two_talkers_and_everyone_takes_turns() -> None:
    period = 120.0
    for seed in range(5):
        spurts = conversation(13, period, seed)
        for person in spurts:
            assert all(a < b <= c < d for (a, b), (c, d) in zip(person, person[1:], strict=False))
            assert all(0 <= a < b <= period for a, b in person)
        stats = talkers_at_once(spurts, period)
        assert stats["max"] == 2, stats  # a cut-in happened, and never a third voice
        assert 0.7 < stats["mean"] < 1.4 and stats["nobody_share"] < 0.3, stats
        assert sum(1 for person in spurts if person) >= 10  # turns go round
    assert talkers_at_once(all_talking(13, period), period) == {
        "max": 13,
        "mean": 13.0,
        "nobody_share": 0.0,
    }
    assert is_talking([(1.0, 2.0)], 10.0, 11.5) and not is_talking([(1.0, 2.0)], 10.0, 12.0)


def test_probe_onsets_survive_other_talkers_after_highpass() -> None:
    # 12 talkers' tones (200-750 Hz), limited, under one 4 kHz burst starting at 1.0 s
    mix = sum(sine(200 + 50 * i, 3.0, 0.07) for i in range(12))
    burst = np.zeros_like(mix)
    burst[SAMPLE_RATE : SAMPLE_RATE + 9600] = sine(4000, 0.2, 0.09)
    onsets = find_onsets(highpass(mix + burst, 2500.0), 4000, 0.03, 0.5)
    assert onsets and abs(onsets[0] - SAMPLE_RATE) <= 48, onsets  # within 1 ms
    assert find_onsets(highpass(mix, 2500.0), 4000, 0.03, 0.5) == []
    assert Bursts(4000, 1.5, 0.2, 1.0, 3).onsets == [48000, 120000, 192000]


def test_capacity_takes_the_last_clean_step() -> None:
    rows = [
        {"stages": 1, "late_ticks": 0, "server_cores_per_stage": 0.5,
         "server_cores_per_stage_above_empty": 0.45},
        {"stages": 2, "late_ticks": 0, "server_cores_per_stage": 0.4,
         "server_cores_per_stage_above_empty": 0.375},
        {"stages": 3, "late_ticks": 7, "server_cores_per_stage": 0.6,
         "server_cores_per_stage_above_empty": 0.58},
    ]  # fmt: skip
    for row in rows:
        row["s2s"] = {"added_by_server_s": {"p50": 0.1, "p95": 0.12}}
    cap = capacity(0.05, rows, 2)
    assert cap["clean_stages"] == 2 and cap["at_stages"] == 2 and cap["good_stages"] == 2
    assert cap["stages_per_core"] == 2.67 and cap["stages_per_node_by_cpu"] == 5
    rows[1]["s2s"] = {"added_by_server_s": {"p50": 0.2, "p95": 0.3}}  # over the goal
    assert capacity(0.05, rows, 2)["good_stages"] == 1
    rows[0]["speakers"] = {"return_share": 0.5}  # half the mix-minus frames missing
    assert capacity(0.05, rows, 2)["good_stages"] == 0
    late = capacity(0.05, rows[2:], 2)
    assert late["clean_stages"] == 0 and late["at_stages"] == 3 and late["late_ticks_there"] == 7
    assert capacity(0.05, [], 2) == {"clean_stages": 0, "good_stages": 0}
