"""The mixer: one program mix for listeners and a mix-minus for each speaker, every 20 ms tick."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from ruang.media.buffer import TICK_SAMPLES, Pcm

LIMIT = 0.98  # full scale; the limiter keeps every output sample within ±LIMIT
RELEASE_PER_TICK = 0.05  # gain recovers by at most this much per 20 ms tick (~0.4 s to recover)


class Limiter:
    """A peak limiter: the gain drops at once to what keeps the peak under LIMIT, then recovers
    slowly; the gain moves in a ramp across the tick so there is no click, and a final clip at
    LIMIT guarantees no sample ever exceeds it."""

    def __init__(self) -> None:
        self.gain = 1.0

    def process(self, block: Pcm) -> Pcm:
        """Return the limited block (a new array)."""
        peak = float(np.max(np.abs(block))) if block.size else 0.0
        wanted = 1.0 if peak <= LIMIT else LIMIT / peak
        target = min(wanted, self.gain + RELEASE_PER_TICK, 1.0)
        if target == self.gain:  # steady: one multiplication, no ramp to build
            out = block * np.float32(target)
        else:
            out = block * np.linspace(self.gain, target, block.size, dtype=np.float32)
            self.gain = target
        np.clip(out, -LIMIT, LIMIT, out=out)
        return out


class Mixer:
    """Sums the unmuted speakers of a space.

    The program mix goes to the encoder; each speaker gets the program minus their own voice
    (mix-minus), so nobody hears themselves. A muted speaker contributes nothing to anyone.
    """

    def __init__(self) -> None:
        self._program = Limiter()
        self._returns: dict[str, Limiter] = {}

    def tick(
        self,
        inputs: Mapping[str, Pcm | None],
        muted: set[str],
        listening: Collection[str] | None = None,
    ) -> tuple[Pcm, dict[str, Pcm]]:
        """Mix one tick. `inputs` maps every speaker on stage to their tick (None = silence);
        a mix-minus is made for those in `listening` (default: all of them)."""
        total = np.zeros(TICK_SAMPLES, dtype=np.float32)
        heard: dict[str, Pcm] = {}
        for sid, pcm in inputs.items():
            if pcm is not None and sid not in muted:
                heard[sid] = pcm
                total += pcm
        wanted = inputs.keys() if listening is None else listening
        for gone in self._returns.keys() - wanted:
            del self._returns[gone]
        returns: dict[str, Pcm] = {}
        for sid in wanted:
            own = heard.get(sid)
            limiter = self._returns.setdefault(sid, Limiter())
            returns[sid] = limiter.process(total - own if own is not None else total)
        return self._program.process(total), returns
