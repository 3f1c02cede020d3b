"""Audio in and out of a peer connection, as mono float32 ticks."""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang.media.buffer import SAMPLE_RATE, InputBuffer, Pcm

log = logging.getLogger(__name__)

RETURN_QUEUE_TICKS = 5  # 100 ms: beyond this the speaker's return path is behind; drop the oldest


def to_mono(frame: av.AudioFrame) -> Pcm:
    """Downmix a decoded frame (aiortc gives packed s16 stereo at 48 kHz) to mono float32."""
    if frame.sample_rate != SAMPLE_RATE:
        raise ValueError(f"expected {SAMPLE_RATE} Hz audio, got {frame.sample_rate} Hz")
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    scale = 1.0 / 32768.0 if frame.format.name.startswith("s16") else 1.0
    if frame.format.is_planar:
        rows = data.astype(np.float32)
        mono: Pcm = rows.sum(axis=0, dtype=np.float32)
    else:
        mono = data.reshape(-1, channels).sum(axis=1, dtype=np.float32)
    mono *= np.float32(scale / channels)
    return mono


async def pump_into(track: MediaStreamTrack, buffer: InputBuffer, label: str) -> None:
    """Read a remote track until it ends, pushing its audio into the speaker's buffer."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            log.info("%s: track ended", label)
            return
        assert isinstance(frame, av.AudioFrame)
        buffer.push(to_mono(frame))


class ReturnTrack(MediaStreamTrack):
    """What a speaker hears: the mixer pushes one tick of mix-minus every 20 ms; aiortc pulls."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.AudioFrame] = asyncio.Queue(RETURN_QUEUE_TICKS)
        self._pts = 0
        self.dropped = 0

    def feed(self, pcm: Pcm) -> None:
        """Queue a tick for sending, dropping the oldest if the sender is behind."""
        s16 = (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(s16, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._pts += pcm.size
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    async def recv(self) -> av.AudioFrame:
        """The next tick of mix-minus audio."""
        if self.readyState != "live":
            raise MediaStreamError
        return await self._queue.get()
