"""The program mix as AAC access units, with silence taken from a cache instead of encoded.

While someone is heard the AAC encoder gets every sample. Once the mix has been digital
silence for DRAIN_SAMPLES, everything the encoder still owes covers silence only (its 1024-
sample delay, one partial frame and one MDCT overlap), so encoding stops and each further
1024 samples of silence become one copy of `silent_access_unit()` — bit-identical to what
the encoder itself makes of silence in steady state. When someone is heard again, the few
silent samples short of a whole unit are fed to the encoder first, then the audio: the
encoder resumes exactly where it stopped, its pending silence comes out first, and no
sample of the timeline is lost or doubled (units out × 1024 = samples in, less what the
encoder holds). Listeners and the replay see one continuous stream: no gap, no glitch.
"""

from __future__ import annotations

import numpy as np

from ruang.codecs.aac import AAC_FRAME_SAMPLES, AacEncoder, silent_access_unit
from ruang.media.buffer import Pcm

# Zeros fed to the live encoder after the last sound before silence comes from the cache:
# 1024 of delay + up to 1023 buffered + the 1024-sample overlap of the last frame with sound,
# rounded up to 4 frames (85 ms).
DRAIN_SAMPLES = 4 * AAC_FRAME_SAMPLES


class ProgramEncoder:
    """AAC-LC access units of the program mix, one 20 ms tick (or a stretch of silence) at a
    time; `cached_units` counts the units that were copies rather than encodes."""

    def __init__(self, encoder: AacEncoder) -> None:
        self._encoder = encoder
        self._silent_unit = silent_access_unit()
        self._zeros_fed = DRAIN_SAMPLES  # a fresh encoder owes nothing: silence may be cached
        self._silence = 0  # samples of cached silence not yet a whole unit
        self.cached_units = 0

    @property
    def drained(self) -> bool:
        """True when silence comes from the cache (the encoder owes no sound)."""
        return self._zeros_fed >= DRAIN_SAMPLES

    @property
    def audio_specific_config(self) -> bytes:
        """The AAC decoder configuration for the init segment."""
        return self._encoder.audio_specific_config

    def encode(self, pcm: Pcm, heard: bool) -> list[bytes]:
        """One tick of the program; `heard` False promises it is all zeros (nobody heard)."""
        if not heard:
            if self.drained:
                return self.silence(pcm.size)
            self._zeros_fed += pcm.size
            return self._encoder.encode(pcm)
        units: list[bytes] = []
        if self._silence:  # the cached silence short of a unit goes in before the sound
            units = self._encoder.encode(np.zeros(self._silence, dtype=np.float32))
            self._silence = 0
        self._zeros_fed = 0
        return units + self._encoder.encode(pcm)

    def silence(self, samples: int) -> list[bytes]:
        """`samples` of silence from the cache (only once drained); the units it completes."""
        if not self.drained:
            raise RuntimeError("cached silence before the encoder has drained its sound")
        self._silence += samples
        count, self._silence = divmod(self._silence, AAC_FRAME_SAMPLES)
        self.cached_units += count
        return [self._silent_unit] * count

    def samples_until(self, units: int) -> int:
        """Samples of cached silence still needed before `units` more units come out."""
        return units * AAC_FRAME_SAMPLES - self._silence

    def flush(self) -> list[bytes]:
        """The end of the space: the last partial unit of silence (padded) and whatever the
        encoder still holds."""
        units = [self._silent_unit] if self._silence else []
        self._silence = 0
        return units + self._encoder.flush()
