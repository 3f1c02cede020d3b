"""Test signals for timing: silence with short tone bursts, and finding their onsets again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ruang_bench.tools.tones import SAMPLE_RATE, Samples, band_envelope, sine
from ruang_bench.tools.whip_client import WhipPublisher

FRAME = 960  # samples per 20 ms WebRTC frame; bursts start on a frame boundary
ONSET_BLOCK = 48  # 1 ms analysis blocks for onset detection
TONE_PRESENT = 0.02  # envelope of a 0.2-amplitude tone after the mix-minus reads ~0.1
ARRIVAL_GAP_S = 0.060  # a pause this long between two return frames is a glitch


@dataclass
class Bursts:
    """`count` bursts of a `freq` Hz tone, `length_s` long, one every `period_s`, the first at
    `first_s` after the signal starts; silence elsewhere.

    Call the object as a SignalTrack signal. It remembers when (time.time()) the frame holding
    each onset was handed to the sender, which is when a microphone would have captured it
    (the track releases each frame at its real time)."""

    freq: float = 1000.0
    period_s: float = 3.0
    length_s: float = 0.2
    first_s: float = 2.0
    count: int = 10
    amplitude: float = 0.25
    released_at: dict[int, float] = field(default_factory=dict)  # onset sample -> time.time()

    @property
    def onsets(self) -> list[int]:
        """Sample index of each burst's first sample (multiples of one 20 ms frame)."""
        first = round(self.first_s * SAMPLE_RATE / FRAME) * FRAME
        period = round(self.period_s * SAMPLE_RATE / FRAME) * FRAME
        return [first + k * period for k in range(self.count)]

    @property
    def duration_s(self) -> float:
        """From the start of the signal to the end of the last burst."""
        return self.onsets[-1] / SAMPLE_RATE + self.length_s

    def __call__(self, start: int, n: int) -> Samples:
        out = np.zeros(n, dtype=np.float32)
        length = round(self.length_s * SAMPLE_RATE)
        for onset in self.onsets:
            lo, hi = max(start, onset), min(start + n, onset + length)
            if lo < hi:
                out[lo - start : hi - start] = sine(
                    self.freq, (hi - lo) / SAMPLE_RATE, self.amplitude, lo - onset
                )
            if start <= onset < start + n:
                self.released_at[onset] = time.time()
        return out


def highpass(audio: Samples, cutoff_hz: float, taps: int = 97) -> Samples:
    """`audio` without what lies below `cutoff_hz`: a windowed-sinc FIR (Hamming, `taps` long,
    about 50 dB down an octave and more below the cutoff), applied with its delay removed, so
    onsets stay where they were to within half its length (1 ms at 97 taps)."""
    n = np.arange(taps) - (taps - 1) / 2
    lowpass = np.sinc(2 * cutoff_hz / SAMPLE_RATE * n) * np.hamming(taps)
    lowpass /= lowpass.sum()
    kernel = -lowpass
    kernel[(taps - 1) // 2] += 1.0  # all-pass minus low-pass
    return np.convolve(audio, kernel, mode="same").astype(np.float32)


def tone_signal(freq: float, amplitude: float = 0.25) -> Callable[[int, int], Samples]:
    """A continuous tone, as a SignalTrack signal."""

    def signal(start: int, n: int) -> Samples:
        return sine(freq, n / SAMPLE_RATE, amplitude, start)

    return signal


def find_onsets(audio: Samples, freq: float, threshold: float, min_gap_s: float = 0.5) -> list[int]:
    """Sample indices where `freq` rises above `threshold` (linear amplitude of the tone),
    at least `min_gap_s` after the previous onset. 1 ms resolution."""
    env = band_envelope(audio, freq, ONSET_BLOCK)
    above = env > threshold
    onsets: list[int] = []
    gap = round(min_gap_s * SAMPLE_RATE)
    for i in np.flatnonzero(above[1:] & ~above[:-1]) + 1:
        sample = int(i) * ONSET_BLOCK
        if not onsets or sample - onsets[-1] >= gap:
            onsets.append(sample)
    if above.size and above[0]:
        onsets.insert(0, 0)
    return onsets


def tone_blocks_missing(
    audio: Samples, freq: float, threshold: float, block: int = FRAME
) -> npt.NDArray[np.bool_]:
    """Per 20 ms block: True where a tone that should be continuous is below `threshold`."""
    env = band_envelope(audio, freq, block)
    return np.asarray(env < threshold)


def return_audio(pub: WhipPublisher, freq: float, t0: float, t1: float) -> dict[str, Any]:
    """What a speaker heard back between t0 and t1 (time.time()): 20 ms blocks in which the
    `freq` Hz tone of the other speaker is missing, and pauses between arriving frames."""
    frames = [(t, s) for t, s in pub.received if t0 <= t <= t1]
    if not frames:
        return {"frames": 0}
    audio = np.concatenate([s for _, s in frames])
    missing = tone_blocks_missing(audio, freq, TONE_PRESENT)
    arrivals = np.array([t for t, _ in frames])
    gaps = np.diff(arrivals)
    return {
        "frames": len(frames),
        "expected_frames": round((t1 - t0) / 0.02),
        "blocks_missing_tone": int(missing.sum()),
        "blocks": int(missing.size),
        "arrival_gaps_over_60ms": int((gaps > ARRIVAL_GAP_S).sum()),
        "max_arrival_gap_ms": round(float(gaps.max()) * 1000, 1) if gaps.size else 0.0,
    }
