"""`ruang bench replay`, briefly: half a minute of replay, downloaded whole, and remuxed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_replay_small_downloads_whole_and_remuxes(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ruang_bench", "replay", "--minutes=0.5", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    assert result["ffmpeg_download"]["whole"], result
    assert abs(result["recording"]["audio_s"] - result["stored_s"]) < 0.05
    assert result["segments"] >= 14 and result["remux_in_process_s"] > 0
    assert result["clip"]["seconds"] == 15 and result["clip"]["units"] >= 15 * 48_000 // 1024
