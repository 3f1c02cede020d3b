"""Per-speaker input buffer: packets arrive in bursts, the mixer takes one tick of audio at a time.

The network side only queues the speaker's encoded packets (`push_packet`); the mixer decodes
what it needs at its tick (`take_packets`, then `push`), so nothing crosses threads and a muted
speaker's packets are dropped without being decoded.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000  # Hz
TICK_SAMPLES = 960  # samples per 20 ms mixer tick
START_DEPTH = 3  # ticks buffered before a speaker is heard: absorbs 40 ms of jitter or a stall
MAX_DEPTH = 8  # ticks; beyond this (clock drift, a stall) the oldest audio is dropped
MAX_PACKETS = 2 * MAX_DEPTH  # encoded packets waiting for the tick; beyond, the oldest go
# After a burst (a sender that stalled, then sent its backlog) the buffer would keep the extra
# delay for good; when more than START_DEPTH + 1 ticks stay waiting for SHRINK_AFTER_TICKS
# ticks in a row, one tick is dropped, so the delay returns to its target within seconds.
SHRINK_AFTER_TICKS = 25  # 0.5 s

Pcm = npt.NDArray[np.float32]


class InputBuffer:
    """A bounded FIFO of mono float32 audio, handed out in whole ticks.

    Audio is heard only once START_DEPTH ticks are buffered, so one late packet does not
    become a gap; when more than MAX_DEPTH ticks pile up the oldest are dropped, so the
    delay a speaker adds never grows without bound, and a lasting excess over the target
    shrinks one tick every SHRINK_AFTER_TICKS.
    """

    def __init__(self) -> None:
        self._ticks: deque[Pcm] = deque()
        self._partial: Pcm = np.zeros(0, dtype=np.float32)
        self._primed = False
        self._packets: deque[bytes] = deque(maxlen=MAX_PACKETS)
        self._high_for = 0  # consecutive ticks with more than START_DEPTH + 1 waiting
        self.dropped_ticks = 0
        self.underruns = 0

    def push_packet(self, packet: bytes) -> None:
        """Queue one encoded packet as it arrives (bounded: the oldest is dropped)."""
        self._packets.append(packet)

    def take_packets(self) -> list[bytes]:
        """Every encoded packet queued since the last call, oldest first."""
        packets = list(self._packets)
        self._packets.clear()
        return packets

    def reset(self) -> None:
        """Forget all audio and packets (the speaker was muted): unmuted, they prime afresh."""
        self._ticks.clear()
        self._packets.clear()
        self._partial = np.zeros(0, dtype=np.float32)
        self._primed = False

    def push(self, pcm: Pcm) -> None:
        """Append mono samples of any length."""
        data = np.concatenate((self._partial, pcm)) if self._partial.size else pcm
        whole = data.size // TICK_SAMPLES
        for i in range(whole):
            self._ticks.append(data[i * TICK_SAMPLES : (i + 1) * TICK_SAMPLES])
        self._partial = data[whole * TICK_SAMPLES :].copy()
        while len(self._ticks) > MAX_DEPTH:
            self._ticks.popleft()
            self.dropped_ticks += 1

    def pop(self) -> Pcm | None:
        """One tick of audio, or None while priming or after an underrun."""
        if not self._primed:
            if len(self._ticks) < START_DEPTH:
                return None
            self._primed = True
        if not self._ticks:
            self._primed = False
            self.underruns += 1
            return None
        tick = self._ticks.popleft()
        if len(self._ticks) > START_DEPTH + 1:
            self._high_for += 1
            if self._high_for >= SHRINK_AFTER_TICKS:
                self._ticks.popleft()
                self.dropped_ticks += 1
                self._high_for = 0
        else:
            self._high_for = 0
        return tick

    @property
    def depth(self) -> int:
        """Whole ticks waiting."""
        return len(self._ticks)
