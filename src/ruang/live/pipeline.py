"""One live space's media: a 20 ms clock drives mixer → encoder → packager → durable store.

The clock never stops while the space is live: with nobody speaking it encodes silence, so
listeners' players and the replay always advance in step with the wall clock. Disk writes
(fsync) run on one writer thread per space, in order, so the clock never waits for the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ruang.codecs.aac import AacEncoder
from ruang.hls.fmp4 import init_segment
from ruang.hls.packager import Packager, PackedPart
from ruang.hls.store import PartRecord, SpaceMediaStore
from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES, InputBuffer, Pcm
from ruang.media.mixer import Mixer

log = logging.getLogger(__name__)

TICK_S = TICK_SAMPLES / SAMPLE_RATE  # 0.020 s


@dataclass
class PipelineStats:
    """A snapshot for /metrics and benchmarks."""

    ticks: int = 0
    late_ticks: int = 0  # ticks that started more than one tick late
    parts: int = 0
    busy_s: float = 0.0  # CPU-ish time spent in mix+encode+package, seconds


class SpacePipeline:
    """The mixer clock of one space, with a buffer in and a return sink out per speaker."""

    def __init__(self, space_id: str, store: SpaceMediaStore, live: bool = True) -> None:
        self.space_id = space_id
        self.store = store
        self.stats = PipelineStats()
        self.muted: set[str] = set()
        self._inputs: dict[str, InputBuffer] = {}
        self._sinks: dict[str, Callable[[Pcm], None]] = {}
        self._mixer = Mixer()
        self._encoder = AacEncoder()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"hls-{space_id}")
        recovered = store.recover()
        store.prestart = not live and recovered == 0
        msn, index = store.next_position(new_run=recovered > 0)
        parts = sum(len(s.parts) for s in store.segments)
        decode_time = round(store.duration * SAMPLE_RATE)
        self._packager = Packager(msn, index, decode_time, parts + 1)
        self._discontinuity = recovered > 0
        self._run_sample0 = decode_time
        self._run_wall0 = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        store.write_init(init_segment(self._encoder.audio_specific_config))
        store.write_playlists(ended=False)
        if recovered:
            log.info(
                "space %s: resumed after %d recovered parts (%.1f s)",
                space_id,
                recovered,
                store.duration,
            )

    # -- stage ---------------------------------------------------------------------------
    def add_speaker(
        self, speaker_id: str, buffer: InputBuffer, sink: Callable[[Pcm], None] | None
    ) -> None:
        """Put a speaker on the mix from `buffer`; `sink` receives their mix-minus every tick
        (None for a send-only publisher)."""
        self._inputs[speaker_id] = buffer
        if sink is not None:
            self._sinks[speaker_id] = sink

    def remove_speaker(self, speaker_id: str) -> None:
        """Take a speaker off the mix at the next tick."""
        self._inputs.pop(speaker_id, None)
        self._sinks.pop(speaker_id, None)

    def set_muted(self, speaker_id: str, muted: bool) -> None:
        """Muted speakers are heard by nobody, from the next tick on."""
        if muted:
            self.muted.add(speaker_id)
        else:
            self.muted.discard(speaker_id)

    def go_live(self) -> None:
        """A scheduled space starts: a new segment begins, and the replay with it."""
        if self.store.prestart:
            first = self._packager.cut()
            self._writer.submit(self.store.go_live, first)

    # -- clock ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clock (idempotent)."""
        if self._task is None:
            self._run_wall0 = datetime.now(UTC)
            self._task = asyncio.create_task(self._run(), name=f"mixer-{self.space_id}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            began = time.perf_counter()
            self.tick()
            self.stats.busy_s += time.perf_counter() - began
            deadline += TICK_S
            delay = deadline - loop.time()
            if delay < -TICK_S:
                self.stats.late_ticks += 1
            # Behind schedule the loop runs ticks back to back until it has caught up, so the
            # media timeline stays locked to the wall clock (PROGRAM-DATE-TIME stays true).
            await asyncio.sleep(max(0.0, delay))

    def tick(self) -> None:
        """Mix, return, encode and package one 20 ms tick."""
        inputs = {sid: buf.pop() for sid, buf in self._inputs.items()}
        program, returns = self._mixer.tick(inputs, self.muted, self._sinks.keys())
        for sid, pcm in returns.items():
            self._sinks[sid](pcm)
        self._publish(self._packager.add(self._encoder.encode(program)))
        self.stats.ticks += 1

    def _publish(self, parts: list[PackedPart]) -> None:
        for part in parts:
            offset = (part.start_sample - self._run_sample0) / SAMPLE_RATE
            rec = PartRecord(
                part.msn,
                part.index,
                part.samples,
                len(part.data),
                self._run_wall0 + timedelta(seconds=offset),
                self._discontinuity and part.index == 0,
            )
            self._discontinuity = False
            self._writer.submit(self._write, rec, part.data)
            self.stats.parts += 1

    def _write(self, rec: PartRecord, data: bytes) -> None:
        try:
            self.store.add_part(rec, data)
        except Exception:
            log.exception("space %s: could not store part %s.%s", self.space_id, rec.msn, rec.index)

    async def stop(self, *, end: bool) -> None:
        """Stop the clock. With `end`, flush the encoder and publish the final VOD replay."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if end:
            self._publish(self._packager.add(self._encoder.flush()) + self._packager.flush())
            self._writer.submit(self.store.end)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown, True)
