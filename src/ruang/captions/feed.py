"""The media process's side of captions: a tap on each captioned space's program mix, one
bounded queue, and the captioning process fed from it by threads of its own.

The mixer's loop only ever appends to the queue (a lock held for a list operation): it never
writes to the pipe, never waits for the captioning process, and when the queue holds
QUEUE_S of audio the oldest audio is dropped (counted). A writer thread takes messages off
the queue and writes them to the pipe (blocking there when the captioning process is behind,
stalled or dead is its business alone); a reader thread hands the captions back to the loop.
A space where nobody is heard sends nothing: the tap does work only on ticks the voice gates
let through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from ruang.captions.wire import AUDIO, CLOSE, END, Message

log = logging.getLogger(__name__)

DOWNSAMPLE = 3  # 48 kHz program → 16 kHz for the engine (the sums in SpaceTap.tick are of 3)
CHUNK_TICKS = 25  # 20 ms ticks of speech per message (0.5 s)
QUEUE_S = 20.0  # seconds of audio waiting for the captioning process, at most, per media process
MAX_QUEUED = 200  # messages (audio and markers) waiting, at most: markers are bounded too
RESTART_AFTER_S = 5.0  # a captioning process that died is started again after this, seconds
Publish = Callable[[str, dict[str, Any]], None]  # (space id, caption) on the mixer's loop


def spaces_share(node_cap: int, media: int, media_count: int) -> int:
    """Media process `media`'s share of the node's cap on captioned spaces (the shares add up
    to the cap: 4 over 3 processes is 2, 1, 1)."""
    return node_cap // media_count + (1 if media < node_cap % media_count else 0)


@dataclass
class CaptionStats:
    """Counters for /metrics and benchmarks."""

    audio_s: float = 0.0  # speech transcribed, seconds
    busy_s: float = 0.0  # CPU the engine spent on it, seconds
    dropped_s: float = 0.0  # speech dropped because the captioning process was behind, seconds
    backlog_s: float = 0.0  # speech waiting in the queue now, seconds
    captions: int = 0  # cues made
    restarts: int = 0  # captioning processes started
    spaces: int = 0  # spaces captioned now
    refused: int = 0  # spaces that got no captions (the cap was reached)

    @property
    def rtf(self) -> float:
        """Real-time factor of the engine: CPU seconds per second of speech (0 before any)."""
        return self.busy_s / self.audio_s if self.audio_s else 0.0


class SpaceTap:
    """One captioned space's program mix, at the mixer's tick: heard ticks, downsampled,
    in messages of CHUNK_TICKS; an END when nobody is heard any more."""

    def __init__(self, space_id: str, feed: CaptionFeed) -> None:
        self.space_id = space_id
        self._feed = feed
        self._ticks: list[npt.NDArray[np.float32]] = []
        self._at = 0.0
        self._speaking = False

    def tick(self, at: float, program: npt.NDArray[np.float32], heard: bool) -> None:
        """One tick of the program that starts at `at` seconds on the space's timeline."""
        if heard:
            if not self._ticks:
                self._at = at
            # summed in threes at once (a new array; the mixer may reuse its own buffers):
            # strided adds cost a third of a reshape-and-mean
            self._ticks.append(program[0::3] + program[1::3] + program[2::3])
            self._speaking = True
            if len(self._ticks) >= CHUNK_TICKS:
                self._flush()
        elif self._speaking:
            self._flush()
            self._speaking = False
            self._feed.send(Message(END, self.space_id, at))

    def _flush(self) -> None:
        if not self._ticks:
            return
        # each tick was summed over 3 samples, then decimated: low-pass enough for speech
        mono16 = np.concatenate(self._ticks) * np.float32(1 / DOWNSAMPLE)
        self._ticks = []
        data = (np.clip(mono16, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._feed.send(Message(AUDIO, self.space_id, self._at, data))

    def close(self, at: float) -> None:
        """The space ended: its last utterance, then CLOSE (the captions file is complete)."""
        self._flush()
        self._feed.send(Message(CLOSE, self.space_id, at))


class CaptionFeed:
    """Captions for up to `max_spaces` spaces of one media process, made by one captioning
    process (`command`, started on the first message) that runs apart from the mixers."""

    def __init__(self, command: list[str], max_spaces: int) -> None:
        self.command = command
        self.max_spaces = max_spaces
        self.stats = CaptionStats()
        self._publish: Publish = lambda space_id, caption: None
        self._taps: dict[str, SpaceTap] = {}
        self._queue: deque[Message] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._died_at = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None

    @staticmethod
    def worker_command(spaces_dir: Path, engine: str, model: str) -> list[str]:
        """The command line of the captioning process."""
        args = [sys.executable, "-m", "ruang.captions.worker", str(spaces_dir), engine]
        return args + ([model] if model else [])

    # -- the mixer's side ------------------------------------------------------------------
    def attach(self, space_id: str) -> SpaceTap | None:
        """A tap for a space going live, or None when `max_spaces` are captioned already
        (that space just has no captions)."""
        tap = self._taps.get(space_id)
        if tap is not None:
            return tap
        if len(self._taps) >= self.max_spaces:
            self.stats.refused += 1
            log.info(
                "space %s: no captions (%d spaces are captioned here)", space_id, len(self._taps)
            )
            return None
        tap = self._taps[space_id] = SpaceTap(space_id, self)
        self.stats.spaces = len(self._taps)
        return tap

    def detach(self, space_id: str, at: float) -> None:
        """The space ended at `at` seconds: its captions are finished."""
        tap = self._taps.pop(space_id, None)
        self.stats.spaces = len(self._taps)
        if tap is not None:
            tap.close(at)

    def send(self, msg: Message) -> None:
        """Queue a message; never blocks (the oldest audio goes when QUEUE_S is held)."""
        with self._cond:
            self._queue.append(msg)
            self.stats.backlog_s += msg.seconds
            while self.stats.backlog_s > QUEUE_S:
                self._drop_oldest_audio()
            while len(self._queue) > MAX_QUEUED:  # stalled for long: markers go too
                old = self._queue.popleft()
                self.stats.backlog_s -= old.seconds
                self.stats.dropped_s += old.seconds
            self._cond.notify()

    def _drop_oldest_audio(self) -> None:
        for i, old in enumerate(self._queue):
            if old.kind == AUDIO:
                del self._queue[i]
                self.stats.backlog_s -= old.seconds
                self.stats.dropped_s += old.seconds
                return
        self.stats.backlog_s = 0.0  # only markers are left

    # -- threads ---------------------------------------------------------------------------
    def start(self, publish: Publish) -> None:
        """Start the writer thread (the captioning process starts on the first message);
        `publish` is called on this loop with each caption."""
        self._publish = publish
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._writer = threading.Thread(
            target=self._write_loop, name="captions-writer", daemon=True
        )
        self._writer.start()

    def stop(self) -> None:
        """Stop the threads and the captioning process (called once, at the media process's
        stop; the utterances in progress are lost)."""
        with self._cond:
            self._running = False
            self._cond.notify()
        proc = self._proc
        if proc is not None:
            proc.kill()  # also unblocks a write to a stalled process
            proc.wait()
        if self._writer is not None:
            self._writer.join(timeout=2)

    def _next(self) -> Message | None:
        with self._cond:
            while self._running and not self._queue:
                self._cond.wait()
            if not self._running:
                return None
            msg = self._queue.popleft()
            self.stats.backlog_s = max(0.0, self.stats.backlog_s - msg.seconds)
            return msg

    def _write_loop(self) -> None:
        while (msg := self._next()) is not None:
            proc = self._process()
            if proc is None or proc.stdin is None:
                self.stats.dropped_s += msg.seconds  # dead a moment ago: not restarted yet
                continue
            try:
                proc.stdin.write(msg.pack())
                proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                if self._running:  # not killed by stop()
                    self.stats.dropped_s += msg.seconds
                self._lost(proc)

    def _process(self) -> subprocess.Popen[bytes] | None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        if proc is not None:
            self._lost(proc)
        if time.monotonic() - self._died_at < RESTART_AFTER_S or not self._running:
            return None
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            log.error("could not start the captioning process %s: %s", self.command, exc)
            self._died_at = time.monotonic()
            return None
        self._proc = proc
        self.stats.restarts += 1
        log.info("captioning process %d started", proc.pid)
        assert proc.stdout is not None
        reader = threading.Thread(
            target=self._read_loop, args=(proc.stdout,), name="captions-reader", daemon=True
        )
        reader.start()
        return proc

    def _lost(self, proc: subprocess.Popen[bytes]) -> None:
        if self._proc is proc:
            self._proc = None
            self._died_at = time.monotonic()
            if self._running:
                log.warning(
                    "captioning process %d is gone (%s); the mix goes on", proc.pid, proc.poll()
                )

    def _read_loop(self, out: IO[bytes]) -> None:
        for line in out:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            loop = self._loop
            if loop is None:
                continue
            try:
                loop.call_soon_threadsafe(self._result, report)
            except RuntimeError:  # the loop closed: the media process is stopping
                return

    def _result(self, report: dict[str, Any]) -> None:
        self.stats.audio_s += float(report.get("audio_s", 0.0))
        self.stats.busy_s += float(report.get("busy_s", 0.0))
        space_id = report.get("space")
        if isinstance(space_id, str):
            self.stats.captions += 1
            caption = {k: report[k] for k in ("start", "end", "text")}
            self._publish(space_id, caption)
