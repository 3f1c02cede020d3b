"""One live space's media: a clock drives stage → mixer → encoder → packager → durable store.

The media timeline never stops while the space is live and stays locked to the wall clock.
With someone on stage the clock ticks every 20 ms (decode, mix, return, encode); with nobody
on stage it wakes once a part (0.512 s) and appends parts of cached silence, which costs no
encode at all. Disk writes run on one writer thread per space, in order, so the clock never
waits for the disk.
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

from ruang.captions.feed import SpaceTap
from ruang.codecs.aac import AacEncoder
from ruang.hls.fmp4 import init_segment
from ruang.hls.packager import Packager, PackedPart
from ruang.hls.store import PartRecord, SpaceMediaStore
from ruang.live.program import ProgramEncoder
from ruang.live.stage import Stage
from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES, InputBuffer

log = logging.getLogger(__name__)

TICK_S = TICK_SAMPLES / SAMPLE_RATE  # 0.020 s


@dataclass
class PipelineStats:
    """A snapshot for /metrics and benchmarks."""

    ticks: int = 0  # 20 ms ticks of media time made (idle stretches included)
    late_ticks: int = 0  # ticks that started more than one tick late
    parts: int = 0
    busy_s: float = 0.0  # CPU-ish time spent in mix+encode+package, seconds
    wakeups: int = 0  # times the clock ran (50 a second on stage, ~2 a second idle)


class SpacePipeline:
    """The mixer clock of one space, with a buffer in and a return sink out per speaker."""

    def __init__(self, space_id: str, store: SpaceMediaStore, live: bool = True) -> None:
        self.space_id = space_id
        self.store = store
        self.stats = PipelineStats()
        self.stage = Stage()
        self._encoder = ProgramEncoder(AacEncoder())
        self._wake = asyncio.Event()  # set when the stage changes, to leave an idle sleep
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
        self._clock = 0  # samples of media time made in this run
        # the space's timeline (the replay's): what earlier runs stored, then this run from
        # the sample at which it went live
        self._timeline0 = store.duration
        self._live_clock = 0
        self.captions: SpaceTap | None = None  # the captions' tap on the program, if captioned
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
    @property
    def muted(self) -> set[str]:
        """Speakers heard by nobody."""
        return self.stage.muted

    def add_speaker(
        self, speaker_id: str, buffer: InputBuffer, sink: Callable[[bytes], None] | None
    ) -> None:
        """Put a speaker on the mix from `buffer` (their Opus packets); `sink` receives one
        Opus packet of their mix-minus every tick (None for a send-only publisher)."""
        self.stage.add(speaker_id, buffer, sink)
        self._wake.set()

    def remove_speaker(self, speaker_id: str) -> None:
        """Take a speaker off the mix at the next tick."""
        self.stage.remove(speaker_id)

    def set_muted(self, speaker_id: str, muted: bool) -> None:
        """Muted speakers are heard by nobody, from the next tick on."""
        self.stage.set_muted(speaker_id, muted)

    def go_live(self) -> None:
        """A scheduled space starts: a new segment begins, and the replay with it."""
        if self.store.prestart:
            self._live_clock = self._clock
            first = self._packager.cut()
            self._writer.submit(self.store.go_live, first)

    # -- clock ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clock (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mixer-{self.space_id}")

    @property
    def idle(self) -> bool:
        """Nobody on stage and nothing but silence owed: the clock may sleep a part at a time."""
        return not len(self.stage) and self._encoder.drained

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self._run_wall0 = datetime.now(UTC) - timedelta(seconds=self._clock / SAMPLE_RATE)
        t0 -= self._clock / SAMPLE_RATE
        was_idle = False
        while True:
            began = time.perf_counter()
            self.stats.wakeups += 1
            idle = self.idle
            if idle or was_idle:  # idle, or just woken from it: silence up to now
                due = self._idle_step(loop.time() - t0)
            if not idle:
                self.tick()
                due = self._clock / SAMPLE_RATE
            was_idle = idle
            self.stats.busy_s += time.perf_counter() - began
            delay = t0 + due - loop.time()
            if delay < -TICK_S:
                self.stats.late_ticks += 1
            if idle:  # asleep until the next part is due, unless someone comes on stage
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, delay))
            else:
                # Behind schedule the loop runs ticks back to back until it has caught up, so
                # the media timeline stays locked to the wall clock (PROGRAM-DATE-TIME true).
                await asyncio.sleep(max(0.0, delay))

    def _idle_step(self, elapsed_s: float) -> float:
        """Catch the timeline up to `elapsed_s` with cached silence (on the 20 ms tick grid, so
        ticking resumes in step); returns when the next part is due, in seconds of the run."""
        now = int(elapsed_s * SAMPLE_RATE) // TICK_SAMPLES * TICK_SAMPLES
        if now > self._clock:
            self._publish(self._packager.add(self._encoder.silence(now - self._clock)))
            self.stats.ticks += (now - self._clock) // TICK_SAMPLES
            self._clock = now
        need = self._encoder.samples_until(self._packager.units_to_next_part)
        return (self._clock + -(-need // TICK_SAMPLES) * TICK_SAMPLES) / SAMPLE_RATE

    @property
    def timeline_s(self) -> float:
        """Where the next tick starts on the space's timeline: seconds since it went live, as
        in its replay (a restart's downtime is not in it)."""
        return self._timeline0 + (self._clock - self._live_clock) / SAMPLE_RATE

    def tick(self) -> None:
        """Mix, return, encode and package one 20 ms tick."""
        mixes = self.stage.tick()
        if self.captions is not None:  # a list append on heard ticks, nothing on the others
            self.captions.tick(self.timeline_s, mixes.program, mixes.heard)
        self._publish(self._packager.add(self._encoder.encode(mixes.program, mixes.heard)))
        self._clock += TICK_SAMPLES
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
