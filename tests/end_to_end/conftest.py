"""End-to-end tests run real clients (aiortc, ffmpeg, Chromium) against a real server."""

from __future__ import annotations

import shutil

import pytest

from ruang.rtc.ice import configure_host_addresses

# The test process's own aiortc peers must offer loopback candidates too.
configure_host_addresses(("127.0.0.1",))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without ffmpeg these tests cannot listen; the README's test command installs it."""
    if shutil.which("ffmpeg") is None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason="ffmpeg binary not installed"))
