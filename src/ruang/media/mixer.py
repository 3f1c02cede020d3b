"""The mixer: one program mix for listeners and a mix-minus for each speaker, every 20 ms tick."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from ruang.media.buffer import TICK_SAMPLES, Pcm

LIMIT = 0.98  # full scale; the limiter keeps every output sample within ±LIMIT
RELEASE_PER_TICK = 0.05  # gain recovers by at most this much per 20 ms tick (~0.4 s to recover)


class Limiter:
    """A peak limiter: the gain drops at once to what keeps the peak under LIMIT, then recovers
    slowly; the gain moves in a ramp across the tick so there is no click, and a final clip at
    LIMIT guarantees no sample ever exceeds it."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

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


@dataclass(frozen=True, slots=True)
class Mixes:
    """One tick's distinct mixes: the program, and a mix-minus for each listening speaker who
    is heard. Every other listener (silent, gated out, muted) hears exactly the program."""

    program: Pcm
    own: dict[str, Pcm]
    heard: bool  # False: nobody was heard and the program is all zeros

    def for_listener(self, speaker_id: str) -> Pcm:
        """What this speaker hears this tick."""
        return self.own.get(speaker_id, self.program)


class Mixer:
    """Sums the unmuted speakers of a space.

    The program mix goes to the encoder; each speaker gets the program minus their own voice
    (mix-minus), so nobody hears themselves. A muted speaker contributes nothing to anyone.
    A speaker who contributes nothing this tick hears the program itself, so only those who
    are heard need a mix (and an encode) of their own.
    """

    def __init__(self) -> None:
        self._program = Limiter()
        self._returns: dict[str, Limiter] = {}

    def mix(
        self,
        inputs: Mapping[str, Pcm | None],
        muted: Collection[str],
        listening: Collection[str],
    ) -> Mixes:
        """Mix one tick. `inputs` maps speakers to their tick (None = silence, or gated out);
        a mix-minus is made for each speaker in `listening` who is heard this tick."""
        total = np.zeros(TICK_SAMPLES, dtype=np.float32)
        heard: dict[str, Pcm] = {}
        for sid, pcm in inputs.items():
            if pcm is not None and sid not in muted:
                heard[sid] = pcm
                total += pcm
        for gone in self._returns.keys() - heard.keys():
            del self._returns[gone]
        own: dict[str, Pcm] = {}
        for sid, pcm in heard.items():
            if sid in listening:
                limiter = self._returns.get(sid)
                if limiter is None:  # they heard the program until now: start from its gain
                    limiter = self._returns[sid] = Limiter(self._program.gain)
                own[sid] = limiter.process(total - pcm)
        return Mixes(self._program.process(total), own, bool(heard))

    def tick(
        self,
        inputs: Mapping[str, Pcm | None],
        muted: set[str],
        listening: Collection[str] | None = None,
    ) -> tuple[Pcm, dict[str, Pcm]]:
        """Mix one tick, with what each listener hears spelled out (default listeners: every
        speaker in `inputs`); those who share the program get the program array itself."""
        wanted = inputs.keys() if listening is None else listening
        mixes = self.mix(inputs, muted, wanted)
        return mixes.program, {sid: mixes.for_listener(sid) for sid in wanted}
