"""AAC-LC encoding of the program mix with PyAV (ffmpeg's native encoder)."""

from __future__ import annotations

import functools
from fractions import Fraction

import av
import numpy as np

from ruang.media.buffer import SAMPLE_RATE, Pcm

BITRATE = 64_000  # bits per second, mono
AAC_FRAME_SAMPLES = 1024  # samples per AAC-LC access unit


class AacEncoder:
    """Encodes mono float32 PCM of any block size into raw AAC-LC access units (no ADTS)."""

    def __init__(self, bitrate: int = BITRATE) -> None:
        ctx = av.CodecContext.create("aac", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "fltp"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, SAMPLE_RATE)
        ctx.open()
        self._ctx = ctx
        self._pts = 0

    @property
    def audio_specific_config(self) -> bytes:
        """The decoder configuration that goes into the init segment's esds box."""
        data = self._ctx.extradata
        assert data, "the AAC encoder gave no AudioSpecificConfig"
        return bytes(data)

    def encode(self, pcm: Pcm) -> list[bytes]:
        """Feed samples; return the access units completed so far, in order."""
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._pts += pcm.size
        return [bytes(p) for p in self._ctx.encode(frame)]

    def flush(self) -> list[bytes]:
        """Drain the encoder at the end of a space (pads the last access unit with silence)."""
        pad = (-self._pts) % AAC_FRAME_SAMPLES
        units = self.encode(np.zeros(pad, dtype=np.float32)) if pad else []
        return units + [bytes(p) for p in self._ctx.encode(None)]


SILENCE_WARMUP_UNITS = 8  # access units of zeros encoded before one is kept as "the" silent unit


@functools.cache
def silent_access_unit(bitrate: int = BITRATE) -> bytes:
    """One AAC-LC access unit of digital silence from an encoder in steady state (past its
    priming), with the same settings as `AacEncoder(bitrate)`: it decodes to 1024 zeros after
    any silent unit, so parts of silence can be made of copies of it without encoding."""
    encoder = AacEncoder(bitrate)
    units = encoder.encode(np.zeros(SILENCE_WARMUP_UNITS * AAC_FRAME_SAMPLES, dtype=np.float32))
    if len(units) < 2:
        raise RuntimeError(f"the AAC encoder gave {len(units)} units for 8 frames of silence")
    return units[-1]
