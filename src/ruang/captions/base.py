"""What a speech engine does for captions: one utterance of 16 kHz mono PCM in, timed words out.

Engines are small adapters, one file each (`sphinx.py`, `whisper.py`), imported only when
chosen (`engines.py`). They run in the captioning process, never in a media process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # Hz: what every engine is given (mono, int16)
Pcm16 = npt.NDArray[np.int16]


class EngineUnavailable(RuntimeError):
    """The chosen engine's package or model is not on this machine (a startup error)."""


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word, its times in seconds from the start of the utterance."""

    start: float
    end: float
    text: str


class Engine(ABC):
    """A speech recogniser for one utterance at a time."""

    name: str = ""

    @abstractmethod
    def transcribe(self, pcm: Pcm16) -> list[Word]:
        """The words heard in `pcm` (16 kHz mono int16), in order; [] for none."""
