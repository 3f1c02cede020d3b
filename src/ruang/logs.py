"""Logging set up alike in every process of a node (supervisor, media processes, workers)."""

from __future__ import annotations

import logging
import os


def setup_logging() -> None:
    """Log at RUANG_LOG_LEVEL (info by default), quieting the WebRTC libraries' chatter."""
    level = os.environ.get("RUANG_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
