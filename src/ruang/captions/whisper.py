"""A better engine where the operator provides one: faster-whisper (CTranslate2) with a Whisper
model folder they downloaded themselves (it covers Bahasa Indonesia too). Imported only when
`--captions-engine whisper` is chosen; never installed or downloaded by Ruang."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ruang.captions.base import Engine, EngineUnavailable, Pcm16, Word

CPU_THREADS = 1  # the captioning process keeps to one core: the mixers own the others


def check(model_dir: str) -> None:
    """Raise EngineUnavailable unless faster-whisper imports and `model_dir` holds a model."""
    if not model_dir:
        raise EngineUnavailable(
            "--captions-engine whisper needs --captions-model DIR: a CTranslate2 Whisper model "
            "folder (with model.bin), e.g. one converted with ct2-transformers-converter"
        )
    if not (Path(model_dir) / "model.bin").is_file():
        raise EngineUnavailable(f"no Whisper model in {model_dir!r}: model.bin is missing")
    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(
            f"--captions-engine whisper needs the faster-whisper package ({exc}); install it "
            "into Ruang's virtualenv (pip install faster-whisper), or use pocketsphinx"
        ) from None


class WhisperEngine(Engine):
    """faster-whisper on the CPU (int8), word timestamps on."""

    name = "whisper"

    def __init__(self, model_dir: str, language: str | None = None) -> None:
        check(model_dir)
        from faster_whisper import WhisperModel

        self._model: Any = WhisperModel(
            model_dir, device="cpu", compute_type="int8", cpu_threads=CPU_THREADS
        )
        self._language = language

    def transcribe(self, pcm: Pcm16) -> list[Word]:
        audio = pcm.astype(np.float32) / 32768.0
        segments, _info = self._model.transcribe(
            audio, language=self._language, word_timestamps=True, vad_filter=False
        )
        words = []
        for segment in segments:
            for w in segment.words or ():
                text = str(w.word).strip()
                if text:
                    words.append(Word(float(w.start), float(w.end), text))
        return words
