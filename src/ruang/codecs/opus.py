"""Opus for the speakers' return path and their incoming audio, mono, with PyAV's libopus.

aiortc's own Opus path encodes stereo at 96 kb/s through a resampler and decodes to stereo in a
thread per receiver; a mix-minus is mono speech, so the server encodes mono once per distinct
mix and hands aiortc the packets, and decodes straight to mono (libopus downmixes a stereo
stream inside the decoder, cheaper than decoding stereo and summing in numpy).
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES, Pcm

RETURN_BITRATE = 32_000  # bits per second, mono: speech through Opus is near transparent here
# "audio" at complexity 5 costs ~60 µs a 20 ms frame here against ~80–160 µs for "voip" at any
# complexity (docs/BENCHMARKS.md, "Media path CPU"); at 32 kb/s both carry speech well.
APPLICATION = "audio"
COMPLEXITY = 5  # libopus 0 (cheapest) … 10 (default)
_TIME_BASE = Fraction(1, SAMPLE_RATE)


class OpusEncoder:
    """Encodes 20 ms ticks of mono float32 into one Opus packet each."""

    def __init__(self, bitrate: int = RETURN_BITRATE) -> None:
        ctx = av.CodecContext.create("libopus", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "flt"
        ctx.bit_rate = bitrate
        ctx.time_base = _TIME_BASE
        ctx.options = {
            "application": APPLICATION,
            "compression_level": str(COMPLEXITY),
            "frame_duration": "20",
        }
        ctx.open()
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: Pcm) -> bytes:
        """One tick (TICK_SAMPLES samples) in, its Opus packet out.

        libopus codes each 20 ms frame as it is given (its 6.5 ms look-ahead is inside the
        packet's pre-skip), so there is always exactly one packet per tick."""
        if pcm.size != TICK_SAMPLES:
            raise ValueError(f"an Opus tick is {TICK_SAMPLES} samples, got {pcm.size}")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += TICK_SAMPLES
        packets = self._ctx.encode(frame)
        if len(packets) != 1:
            raise RuntimeError(f"libopus gave {len(packets)} packets for one 20 ms frame")
        return bytes(packets[0])


class OpusDecoder:
    """Decodes one speaker's Opus packets (mono or stereo streams) to mono float32."""

    def __init__(self) -> None:
        ctx = av.CodecContext.create("libopus", "r")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"  # libopus mixes a stereo stream down to one channel itself
        self._ctx = ctx

    def decode(self, packet: bytes) -> Pcm:
        """The samples in one packet (any Opus frame size); empty if it holds none."""
        frames = self._ctx.decode(av.Packet(packet))
        if not frames:
            return np.zeros(0, dtype=np.float32)
        chunks = [_mono_float(f) for f in frames]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _mono_float(frame: av.AudioFrame) -> Pcm:
    data = frame.to_ndarray()
    if data.dtype == np.int16:
        out: Pcm = data.reshape(-1).astype(np.float32)
        out *= np.float32(1.0 / 32768.0)
        return out
    return data.reshape(-1).astype(np.float32, copy=False)
