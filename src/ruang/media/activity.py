"""Who is talking: a noise gate with hangover per speaker, as conference mixers use.

A speaker whose gate is closed contributes nothing to the mix, so the program mix is exactly
their mix-minus and they can share its one Opus encode with everyone else who is silent;
only speakers whose gate is open need a mix (and an encode) of their own. The gate opens on
the tick that crosses the threshold (that tick is heard: no clipped onset) and closes only
after HANGOVER_TICKS below it (word endings and short pauses stay in).
"""

from __future__ import annotations

import numpy as np

from ruang.media.buffer import Pcm

OPEN_DBFS = -50.0  # tick RMS level (dB full scale) that opens the gate; room noise sits lower
HANGOVER_TICKS = 25  # 20 ms ticks (0.5 s) below the threshold before the gate closes
_OPEN_MEAN_SQUARE = 10.0 ** (OPEN_DBFS / 10.0)  # the same threshold as a mean of squares


def mean_square(pcm: Pcm) -> float:
    """Mean of the squared samples (RMS², full scale 1.0); 0 for an empty block."""
    return float(np.dot(pcm, pcm)) / pcm.size if pcm.size else 0.0


class VoiceGate:
    """One speaker's gate: `update` with each tick says whether that tick is heard."""

    def __init__(self, hangover_ticks: int = HANGOVER_TICKS) -> None:
        self.hangover_ticks = hangover_ticks
        self._quiet_for = hangover_ticks  # starts closed
        self.opened = 0  # how many times it opened (statistics)

    @property
    def is_open(self) -> bool:
        """Whether the last tick given was heard."""
        return self._quiet_for < self.hangover_ticks

    def update(self, pcm: Pcm | None) -> bool:
        """Take this speaker's tick (None: nothing arrived) and return whether it is heard."""
        was_open = self.is_open
        if pcm is not None and mean_square(pcm) >= _OPEN_MEAN_SQUARE:
            self._quiet_for = 0
        elif self._quiet_for < self.hangover_ticks:
            self._quiet_for += 1
        if self.is_open and not was_open:
            self.opened += 1
        return self.is_open

    def close(self) -> None:
        """Close at once (the speaker was muted)."""
        self._quiet_for = self.hangover_ticks
