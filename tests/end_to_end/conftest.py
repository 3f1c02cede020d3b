"""End-to-end tests run real clients (aiortc, ffmpeg, Chromium) against a real server."""

from __future__ import annotations

from ruang.rtc.ice import configure_host_addresses

# The test process's own aiortc peers must offer loopback candidates too.
configure_host_addresses(("127.0.0.1",))
