"""Evidence of what happened: a per-second traffic recorder with hash-chained records, and an
incident report with graded verdicts (organic surge, attack, mixed, capacity failure)."""

from ruang.forensics.chain import verify
from ruang.forensics.recorder import TrafficRecorder
from ruang.forensics.render import render_html
from ruang.forensics.report import build_report

__all__ = ["TrafficRecorder", "build_report", "render_html", "verify"]
