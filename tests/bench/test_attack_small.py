"""`ruang bench attack`, briefly: a small audience, then a forged-ticket flood (wrk naming its
sources in X-Forwarded-For); `ruang report` must call it an attack of kind forged_tickets,
the flood must have been refused, and the audience must have kept playing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ruang.delivery.hls import HLS_PARAMS
from ruang_bench.attack import SCENARIOS, confusion, label
from ruang_bench.attackers import cache_bust_paths, forged_tickets, packed_address, wrk_script

ROOT = Path(__file__).resolve().parents[2]


def test_forged_ticket_flood_is_refused_and_named(tmp_path: Path) -> None:
    out = tmp_path / "attack.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "ruang_bench", "attack", "--scenario=forged_tickets",
            "--baseline-s=12", "--attack-s=8", "--gap-s=0", "--audience=4", "--speakers=0",
            "--flood-rps=3000", f"--keep={tmp_path / 'run'}", f"--out={out}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    (r,) = result["scenarios"]
    assert r["got"]["label"] == "attack/forged_tickets", r["got"]
    assert r["right"] and result["confusion"]["right"] == 1
    assert any("forged ticket" in reason for reason in r["got"]["reasons"])
    (flood,) = r["attackers"]
    assert flood["sent"] > 5000 and flood["ok_2xx"] == 0, flood
    assert set(flood["status"]) <= {"401", "403", "429"}, flood["status"]
    audience = r["legit"]["audience"]
    assert audience["parts"] > 0 and audience["on_time_share"] >= 0.95, audience
    assert (tmp_path / "run" / "group0" / "report" / "report.html").exists()


def test_labels_paths_and_the_matrix() -> None:
    assert label("attack", "slowloris") == "attack/slowloris"
    assert label("mixed", "playlist_flood") == "mixed" and label(None, None) == "no incident"
    assert {s.label for s in SCENARIOS} >= {"organic_surge", "capacity_failure", "mixed"}
    right = {"expected": {"label": "attack/join_flood"}, "got": {"label": "attack/join_flood"}}
    wrong = {"expected": {"label": "organic_surge"}, "got": {"label": "attack/bot_listeners"}}
    c = confusion([{**right, "right": True}, {**wrong, "right": False}])
    assert c["right"] == 1 and c["total"] == 2
    assert c["matrix"]["organic_surge"]["attack/bot_listeners"] == 1
    assert packed_address(40, 21, 20) == "127.40.1.2"

    real = ["abcdefghijk.1800000000.MACMACMACMACMACMACMACMACMACMACMACMACMACMACM"]
    forged = forged_tickets(real, 60)
    assert len(set(forged)) == 60 and real[0] not in forged
    assert all(len(t.split(".")) == 3 for t in forged)
    busting = cache_bust_paths("sp", ["t1"], ["7.0.m4s"], 50)
    queries = [p.split("?", 1)[1].split("=")[0] for p in busting if "?" in p]
    assert queries and not set(queries) & HLS_PARAMS
    lua = wrk_script(["/a", "/b"], ["127.9.0.1"], "POST", "{}", rate=1000, connections=50)
    assert "function delay() return delay_ms end" in lua and "local delay_ms = 50" in lua
    with pytest.raises(ValueError):
        wrk_script(['/x"; os.exit() --'], ["127.0.0.1"])
