"""`ruang bench failover`, briefly: one kill -9 of a media process; the bench finds the killed
space's new run on disk and when it was listed, and the other space's parts kept coming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_failover_small_finds_the_new_run_and_the_bystander_unbroken(tmp_path: Path) -> None:
    out = tmp_path / "failover.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ruang_bench", "failover", "--kills=1", "--every-s=4",
         f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    assert result["placed_on_media"][0] != result["placed_on_media"][1]
    assert result["kills"] == 1 and result["new_runs_on_disk"] == 1
    assert result["supervisor_restarts"]["media"] == 1
    assert len(result["back_on_air_each_s"]) == 1 and result["back_on_air_each_s"][0] > 0
    bystander = result["bystander"]
    assert bystander["parts_listed"] >= bystander["parts_expected"] - 1
