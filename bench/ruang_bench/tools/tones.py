"""Test signals and how to find them again: sine tones, tone bursts, FFT levels, onsets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000  # Hz

Samples = npt.NDArray[np.float32]


def sine(freq: float, seconds: float, amplitude: float = 0.25, start: int = 0) -> Samples:
    """A sine tone; `start` is the sample index it continues from (for seamless blocks)."""
    n = np.arange(start, start + round(seconds * SAMPLE_RATE))
    return (amplitude * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.float32)


def tone_levels_db(
    audio: Samples, freqs: list[float], guard_hz: float = 25.0
) -> tuple[dict[float, float], float]:
    """Power of each tone (dB, peak bin within ±guard) and of the strongest other bin
    between 50 Hz and 8 kHz — the "rest of the spectrum"."""
    if audio.size < SAMPLE_RATE // 4:
        raise ValueError(f"need at least 0.25 s of audio, got {audio.size} samples")
    window = np.hanning(audio.size)
    spectrum = np.abs(np.fft.rfft(audio * window)) ** 2
    bins = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)
    floor = 1e-20
    levels: dict[float, float] = {}
    rest = (bins > 50) & (bins < 8000)
    for f in freqs:
        near = np.abs(bins - f) <= guard_hz
        levels[f] = float(10 * np.log10(spectrum[near].max() + floor))
        rest &= ~near
        # harmonics of a tone are the tone's, not "the rest" (a limiter or codec can add them)
        for h in (2, 3):
            rest &= ~(np.abs(bins - h * f) <= guard_hz)
    return levels, float(10 * np.log10(spectrum[rest].max() + floor))


def rms_db(audio: Samples) -> float:
    """RMS level in dBFS."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))


def band_envelope(audio: Samples, freq: float, block: int = 240) -> npt.NDArray[np.float64]:
    """Per-block (5 ms) magnitude of one frequency (Goertzel-like projection), for onsets."""
    n = audio.size // block * block
    t = np.arange(n) / SAMPLE_RATE
    ref = np.exp(-2j * np.pi * freq * t)
    proj = (audio[:n] * ref).reshape(-1, block).sum(axis=1)
    return np.asarray(np.abs(proj) / block, dtype=np.float64)


def onset_seconds(audio: Samples, freq: float, threshold: float, block: int = 240) -> float | None:
    """Time of the first block where `freq` exceeds `threshold` (linear amplitude), or None."""
    env = band_envelope(audio, freq, block)
    hits = np.nonzero(env > threshold)[0]
    return None if hits.size == 0 else float(hits[0] * block / SAMPLE_RATE)
