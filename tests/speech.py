"""Synthetic test speech: espeak-ng's `en-us+f2` voice at 150 words a minute, 16 kHz mono.

pocketsphinx hears this voice far better than espeak-ng's default one (DESIGN §7). The
sentence is made of simple common words; KEY_WORDS are the ones the checks look for.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

SENTENCE = (
    "The people in the room talk about the music and the water every morning. "
    "We open the window and drink coffee with good friends."
)
KEY_WORDS = ("people", "room", "talk", "music", "water", "morning", "window", "coffee", "friends")


def speak(path: Path, text: str = SENTENCE, rate: int = 16_000) -> npt.NDArray[np.int16]:
    """Write `text` spoken to `path` (a mono WAV at `rate` Hz) and return its samples."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ac", "1", "-ar", str(rate), str(path)],
        check=True,
    )
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def found(text: str) -> list[str]:
    """The key words that `text` holds."""
    words = set(text.lower().split())
    return [w for w in KEY_WORDS if w in words]
