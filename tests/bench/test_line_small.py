"""`ruang bench line`, briefly: with 2 workers the node's waiting room keeps one pace, one
sequence of places and FIFO order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_line_small_keeps_the_node_s_pace_and_order(tmp_path: Path) -> None:
    out = tmp_path / "line.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ruang_bench", "line", "--worker-counts=2", "--joins-per-s=5",
         "--arrivals=40", "--arrive-s=3", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(out.read_text())["result"]["runs"]["workers_2"]
    assert run["admitted"] == 40 and run["places_one_sequence"] and run["fifo"], run
    assert 0.7 < run["times_pace"] < 1.3, run  # each worker with its own pace: about 2
