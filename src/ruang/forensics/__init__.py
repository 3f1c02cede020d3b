"""Evidence of what happened: a per-second traffic recorder with hash-chained records, and an
incident report with graded verdicts (organic surge, attack, mixed, capacity failure)."""

from ruang.forensics.chain import verify
from ruang.forensics.recorder import TrafficRecorder

__all__ = ["TrafficRecorder", "verify"]
