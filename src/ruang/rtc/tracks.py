"""What a speaker hears, as a track of ready-made Opus packets for aiortc to send."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES

RETURN_QUEUE_TICKS = 5  # 100 ms: beyond this the speaker's return path is behind; drop the oldest
_TIME_BASE = Fraction(1, SAMPLE_RATE)


class ReturnTrack(MediaStreamTrack):
    """The mixer pushes one Opus packet of mix-minus every 20 ms tick; aiortc pulls.

    aiortc sends an `av.Packet` as it is (no encode, no audio-level computation) and takes
    the RTP timestamp from its pts: the pts here counts this track's own ticks, so the
    speaker's RTP stream stays continuous whichever encoder (the shared program one or
    their own mix-minus one) made each packet. aiortc numbers the RTP packets itself.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet] = asyncio.Queue(RETURN_QUEUE_TICKS)  # type: ignore[type-arg]
        self._pts = 0
        self.dropped = 0

    def feed(self, packet: bytes) -> None:
        """Queue one tick's packet for sending, dropping the oldest if the sender is behind."""
        out = av.Packet(packet)
        out.pts = self._pts
        out.time_base = _TIME_BASE
        self._pts += TICK_SAMPLES
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(out)

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        """The next tick's packet."""
        if self.readyState != "live":
            raise MediaStreamError
        return await self._queue.get()
