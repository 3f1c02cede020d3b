"""Headless Chromium as it runs on these machines (root, no GPU, no network of its own), for the
benchmarks and the tests that drive real pages."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's package
HEADLESS_ARGS = (
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-background-networking",  # its calls home are refused here, many at a time
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"  # a page may play without a click
