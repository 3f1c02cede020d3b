"""`ruang bench edge`, briefly: the shipped nginx edge in front of a real origin answers every
ticketed request of the listener mix with a 200, mostly from its cache, and the static nginx
serves the same paths; the JSON carries both rates and the ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_edge_small_answers_every_ticketed_request_from_its_cache(tmp_path: Path) -> None:
    out = tmp_path / "edge.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruang_bench",
            "edge",
            "--duration=1",
            "--rounds=1",
            "--connections=8",
            f"--out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["result"]
    edge, static = result["edge"], result["static"]
    assert edge["requests"] > 100 and static["requests"] > 100, (edge, static)
    assert edge["not_200_total"] == 0 and edge["errors_total"] == 0, edge
    assert static["not_200_total"] == 0, static
    assert result["edge_all_200"] is True
    log = result["edge_rounds"][0]["edge_log"]
    assert log["answers"] >= edge["requests"] * 0.9, log  # the access log saw the run
    assert log["statuses"] == {"200": log["answers"]}, log
    assert log["origin_requests"] <= max(10, log["answers"] // 100), log  # the cache answered
    assert 0 < result["ratio"] < 5
