"""Headless Chromium for the tests: Debian's binary with a fake microphone from a WAV file."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from ruang_bench.tools.chromium import AUTOPLAY, CHROMIUM, HEADLESS_ARGS

__all__ = ["BROWSER_HZ", "CHROMIUM", "chromium_args", "watch_csp", "write_wav"]
from ruang_bench.tools.tones import sine

BROWSER_HZ = 880.0  # the tone of the fake microphone


def write_wav(path: Path, seconds: float = 30.0, hz: float = BROWSER_HZ) -> None:
    """A tone (`hz`) that swells and fades once a second, so that the browser's noise
    suppression does not take it for steady background noise (a smooth envelope keeps the
    spectrum clean)."""
    tone = sine(hz, seconds, 0.4)
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(tone.size) / 48_000)
    pcm = (tone * envelope * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(pcm.tobytes())


def chromium_args(wav: Path) -> list[str]:
    """Flags for headless Chromium as root on this machine, with `wav` as the microphone."""
    return [
        *HEADLESS_ARGS,
        "--disable-quic",
        "--allow-loopback-in-peer-connection",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        AUTOPLAY,
    ]


def watch_csp(page: Any, violations: list[str]) -> None:
    """Collect what the page's console says about Content-Security-Policy violations (Chromium
    reports each refused script, style, worker, media or connection there)."""

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", seen)
