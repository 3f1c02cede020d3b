"""The captioning process: `python -m ruang.captions.worker SPACES_DIR ENGINE [MODEL_DIR]`.

One per media process, started by its `CaptionFeed` on the first speech to caption. It reads
messages (`wire.py`) on stdin, gathers each space's utterance, transcribes it when it is over
(the voice gates closed, a gap in the audio, or MAX_UTTERANCE_S), appends the cue to
SPACES_DIR/{id}/captions.vtt (fdatasync'd) and prints one JSON line per utterance on stdout:
`{"space", "start", "end", "text", "audio_s", "busy_s"}` (no "space" when nothing was heard).
It reads one message at a time, so when it falls behind the pipe fills and the media process
drops the oldest audio; the mixer never waits for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from ruang.captions.base import SAMPLE_RATE, Engine
from ruang.captions.engines import load
from ruang.captions.webvtt import CAPTIONS_FILE, END_NOTE, HEADER, cue_text
from ruang.captions.wire import AUDIO, CLOSE, Message, read_message

log = logging.getLogger(__name__)

MAX_UTTERANCE_S = 15.0  # a longer stretch of speech is cut into several cues, seconds
GAP_S = 0.1  # audio that does not follow on within this (dropped audio) starts a new utterance
NICENESS = 10  # below the delivery workers (+5): captions are the first thing to fall behind
PR_SET_PDEATHSIG = 1


@dataclass
class _Utterance:
    start: float  # on the space's timeline, seconds
    chunks: list[bytes] = field(default_factory=list)
    samples: int = 0

    @property
    def end(self) -> float:
        return self.start + self.samples / SAMPLE_RATE


class Captioner:
    """Utterances per space → engine → cues in the space's file and lines on `out`."""

    def __init__(self, engine: Engine, spaces_dir: Path, out: IO[str]) -> None:
        self.engine = engine
        self.spaces_dir = spaces_dir
        self.out = out
        self._open: dict[str, _Utterance] = {}
        self._last_end: dict[str, float] = {}

    def handle(self, msg: Message) -> None:
        """Take one message from the media process."""
        u = self._open.get(msg.space_id)
        if msg.kind == AUDIO:
            if u is not None and abs(msg.at - u.end) > GAP_S:
                self.finish(msg.space_id)
                u = None
            if u is None:
                u = self._open[msg.space_id] = _Utterance(msg.at)
            u.chunks.append(msg.pcm)
            u.samples += len(msg.pcm) // 2
            if u.samples >= MAX_UTTERANCE_S * SAMPLE_RATE:
                self.finish(msg.space_id)
            return
        self.finish(msg.space_id)
        if msg.kind == CLOSE:
            self._append(msg.space_id, END_NOTE)
            self._last_end.pop(msg.space_id, None)

    def finish(self, space_id: str) -> None:
        """Transcribe the space's utterance in progress, if any."""
        u = self._open.pop(space_id, None)
        if u is None or not u.samples:
            return
        pcm = np.frombuffer(b"".join(u.chunks), dtype=np.int16)
        began = time.process_time()
        words = self.engine.transcribe(pcm)
        report: dict[str, object] = {
            "audio_s": round(u.samples / SAMPLE_RATE, 3),
            "busy_s": round(time.process_time() - began, 4),
        }
        if words:
            # cues never overlap or go back in time, whatever the engine's rounding
            start = max(u.start + words[0].start, self._last_end.get(space_id, 0.0))
            end = max(start + 0.1, u.start + words[-1].end)
            text = " ".join(w.text for w in words)
            self._last_end[space_id] = end
            self._append(space_id, cue_text(start, end, text))
            report.update(space=space_id, start=round(start, 3), end=round(end, 3), text=text)
        self.out.write(json.dumps(report) + "\n")
        self.out.flush()

    def _append(self, space_id: str, text: str) -> None:
        path = self.spaces_dir / space_id / CAPTIONS_FILE
        try:
            with open(path, "a", encoding="utf-8") as f:
                if f.tell() == 0:
                    f.write(HEADER)
                f.write(text)
                f.flush()
                os.fdatasync(f.fileno())
        except OSError as exc:  # its folder is gone (or the disk is full): the events go on
            log.warning("space %s: could not append to its captions: %s", space_id, exc)


def _die_with_parent() -> None:
    # as ruang.live.process does, without importing the media stack into this process
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main() -> None:
    """Entry point of the captioning process."""
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="captions: %(levelname)s %(message)s")
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    spaces_dir, engine_name = Path(sys.argv[1]), sys.argv[2]
    model = sys.argv[3] if len(sys.argv) > 3 else ""
    captioner = Captioner(load(engine_name, model), spaces_dir, sys.stdout)
    stdin = sys.stdin.buffer
    while True:
        msg = read_message(stdin)
        if msg is None:  # the media process closed the pipe (stopping)
            break
        captioner.handle(msg)


if __name__ == "__main__":
    main()
