"""A process of WHIP publishers for load tests: `python -m ruang_bench.publishers`.

aiortc clients are expensive, so benchmarks run them apart from themselves, in one or more of
these processes. It reads commands, one JSON object a line, on stdin, and answers each with
one JSON line on stdout:

    {"add": [{"whip_url": ..., "token": ..., "freq": 450.0}, ...], "direction": "sendonly"}
        → {"ok": true, "connected": n, "failed": [errors], "publishers": total}
    {"stats": true}
        → {"ok": true, "publishers": n, "late_frames": n, "max_late_s": s, "frames": n,
           "return_frames": n, "return_sound_frames": n, "return_gaps_over_60ms": n,
           "max_return_gap_ms": ms}  (counters since the previous stats)
    {"quit": true}
        → {"ok": true}  (every session is DELETEd first)

Each publisher sends a tone as Opus packets encoded once at start (libopus, as aiortc would
encode it): the server receives and decodes real Opus, while a publisher costs only packet
pacing, RTP and SRTP, which lets one process drive dozens of them on a small machine. A
frame counts as late when the track hands it to the sender more than 20 ms after its time:
then it is the publishers, not the server, that cannot keep up.

A publisher may talk in spurts instead of all the time (ruang_bench.talk): a spec's "talk"
lists [start_s, end_s] spurts within "period_s" seconds that repeat from the wall-clock time
"epoch", the same for a whole stage so that its people take turns; between spurts it sends
room noise at "noise_dbfs" (also encoded once; -120 or below: digital silence), as a
microphone would without Opus DTX. What a sendrecv publisher hears back (aiortc decodes it)
is only summarised, once a second: frames, frames with sound in them, and arrival gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.talk import Spurts, is_talking
from ruang_bench.tools.tones import SAMPLE_RATE, Samples, sine
from ruang_bench.tools.whip_client import WhipPublisher

LATE_S = 0.020  # a frame released later than this after its time is late
CONNECT_TIMEOUT_S = 20.0
NOISE_DBFS = -65.0  # room noise between talk spurts (a headset after noise suppression)
SOUND_RMS = 0.01  # -40 dBFS: a return frame this loud carries somebody's voice
RETURN_GAP_S = 0.060  # a pause this long between two return frames is a glitch


@dataclass
class Lateness:
    """How late one process's tracks release frames."""

    frames: int = 0
    late: int = 0
    worst: float = 0.0


@dataclass
class ReturnAudio:
    """What one process's sendrecv publishers heard back, summed over them."""

    frames: int = 0
    sound: int = 0  # frames at least SOUND_RMS loud
    gaps: int = 0  # pauses over RETURN_GAP_S between two frames of one publisher
    worst_gap: float = 0.0


FRAME = 960  # samples per 20 ms Opus frame
LOOP_FRAMES = 50  # one second of tone, encoded once and sent in a loop
_encoded: dict[tuple[str, float], list[bytes]] = {}


def opus_tone(freq: float) -> list[bytes]:
    """One second of a tone as 20 ms Opus packets (stereo, 48 kHz, like aiortc's encoder).
    Pick a frequency with a whole number of periods per 20 ms (a multiple of 50 Hz) so that
    the loop is seamless."""
    return _opus_loop(("tone", freq), lambda i: sine(freq, FRAME / SAMPLE_RATE, 0.2, i * FRAME))


def opus_noise(dbfs: float) -> list[bytes]:
    """One second of white noise at `dbfs` RMS as 20 ms Opus packets (digital silence at
    -120 dBFS or below)."""
    rms = 0.0 if dbfs <= -120 else 10 ** (dbfs / 20)
    rng = np.random.default_rng(0)
    return _opus_loop(("noise", dbfs), lambda i: rng.normal(0.0, rms, FRAME).astype(np.float32))


def _opus_loop(key: tuple[str, float], make: Callable[[int], Samples]) -> list[bytes]:
    """LOOP_FRAMES packets of the signal `make(frame_index)`, encoded once and kept."""
    if key not in _encoded:
        ctx = av.CodecContext.create("libopus", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.bit_rate = 64_000
        ctx.format = "s16"
        ctx.layout = "stereo"
        ctx.sample_rate = SAMPLE_RATE
        ctx.time_base = Fraction(1, SAMPLE_RATE)
        ctx.options = {"application": "voip"}
        packets: list[bytes] = []
        for i in range(LOOP_FRAMES + 4):
            s16 = (np.clip(make(i), -1, 1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.repeat(s16, 2).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate = SAMPLE_RATE
            frame.pts = i * FRAME
            frame.time_base = Fraction(1, SAMPLE_RATE)
            packets += [bytes(p) for p in ctx.encode(frame)]
        _encoded[key] = packets[-LOOP_FRAMES:]
    return _encoded[key]


@dataclass(frozen=True)
class Talk:
    """When a publisher talks: spurts within a period that repeats from `epoch` (time.time()),
    and how loud the room is in between."""

    spurts: Spurts
    period_s: float
    epoch: float
    noise_dbfs: float = NOISE_DBFS


class OpusToneTrack(MediaStreamTrack):
    """Pre-encoded Opus packets paced in real time, noting how late each one is released: a
    tone all the time, or (with `talk`) a tone during its spurts and room noise between."""

    kind = "audio"

    def __init__(self, freq: float, stats: Lateness, talk: Talk | None = None) -> None:
        super().__init__()
        self._packets = opus_tone(freq)
        self._quiet = opus_noise(talk.noise_dbfs) if talk is not None else self._packets
        self._talk = talk
        self._stats = stats
        self._n = 0
        self._t0: float | None = None
        self._wall0 = 0.0

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        """The next 20 ms packet, released no earlier than its real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
            self._wall0 = time.time()
        due = self._t0 + self._n * FRAME / SAMPLE_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay > LATE_S:
            self._stats.late += 1
        self._stats.frames += 1
        self._stats.worst = max(self._stats.worst, -delay)
        packets = self._packets
        if self._talk is not None:
            t = self._wall0 - self._talk.epoch + self._n * FRAME / SAMPLE_RATE
            if not is_talking(self._talk.spurts, self._talk.period_s, t):
                packets = self._quiet
        packet = av.Packet(packets[self._n % len(packets)])
        packet.pts = self._n * FRAME
        packet.time_base = Fraction(1, SAMPLE_RATE)
        self._n += 1
        return packet


def talk_of(spec: dict[str, Any]) -> Talk | None:
    """The talk spurts a publisher spec asks for, if any (see the module's docstring)."""
    if "talk" not in spec:
        return None
    return Talk(
        [(float(a), float(b)) for a, b in spec["talk"]],
        float(spec["period_s"]),
        float(spec["epoch"]),
        float(spec.get("noise_dbfs", NOISE_DBFS)),
    )


async def _connect(spec: dict[str, Any], direction: str, stats: Lateness) -> WhipPublisher:
    track = OpusToneTrack(float(spec.get("freq", 450.0)), stats, talk_of(spec))
    pub = WhipPublisher(spec["whip_url"], spec["token"], track, direction=direction)
    try:
        await pub.start(timeout=CONNECT_TIMEOUT_S)
        await pub.wait_connected(timeout=CONNECT_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(Exception):
            await pub.stop()
        raise
    return pub


async def _summarise_return_audio(pubs: list[WhipPublisher], heard: ReturnAudio) -> None:
    """Once a second, count what each publisher heard back and drop the samples, so that
    memory stays flat and the analysis costs one numpy pass per publisher."""
    last: dict[int, float] = {}  # id(publisher) -> arrival of its previous frame
    while True:
        await asyncio.sleep(1.0)
        for p in pubs:
            frames, p.received = p.received, []
            if not frames:
                continue
            arrivals = np.array([last.get(id(p), frames[0][0])] + [t for t, _ in frames])
            last[id(p)] = frames[-1][0]
            gaps = np.diff(arrivals)
            rms = np.sqrt(np.mean(np.square(np.stack([s for _, s in frames])), axis=1))
            heard.frames += len(frames)
            heard.sound += int((rms >= SOUND_RMS).sum())
            heard.gaps += int((gaps > RETURN_GAP_S).sum())
            heard.worst_gap = max(heard.worst_gap, float(gaps.max()))


async def serve() -> None:
    """Answer commands until quit or end of input."""
    configure_host_addresses(("127.0.0.1",))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pubs: list[WhipPublisher] = []
    stats = Lateness()
    heard = ReturnAudio()
    janitor = asyncio.create_task(_summarise_return_audio(pubs, heard))

    def answer(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if "add" in cmd:
            direction = cmd.get("direction", "sendonly")
            results = await asyncio.gather(
                *(_connect(s, direction, stats) for s in cmd["add"]), return_exceptions=True
            )
            failed = [repr(r) for r in results if isinstance(r, BaseException)]
            pubs.extend(r for r in results if isinstance(r, WhipPublisher))
            answer(
                {
                    "ok": not failed,
                    "connected": len(results) - len(failed),
                    "failed": failed,
                    "publishers": len(pubs),
                }
            )
        elif "stats" in cmd:
            answer(
                {
                    "ok": True,
                    "publishers": len(pubs),
                    "frames": stats.frames,
                    "late_frames": stats.late,
                    "max_late_s": round(stats.worst, 4),
                    "return_frames": heard.frames,
                    "return_sound_frames": heard.sound,
                    "return_gaps_over_60ms": heard.gaps,
                    "max_return_gap_ms": round(heard.worst_gap * 1000, 1),
                }
            )
            stats.frames = stats.late = 0
            stats.worst = 0.0
            heard.frames = heard.sound = heard.gaps = 0
            heard.worst_gap = 0.0
        elif "quit" in cmd:
            break
    janitor.cancel()
    await asyncio.gather(*(p.stop() for p in pubs), return_exceptions=True)
    answer({"ok": True})


if __name__ == "__main__":
    asyncio.run(serve())


class PublisherProcess:
    """The parent's handle on one publishers process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @property
    def pid(self) -> int:
        """Its process id (for CPU accounting)."""
        return self.proc.pid

    @classmethod
    async def start(cls) -> PublisherProcess:
        """Start `python -m ruang_bench.publishers`."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ruang_bench.publishers",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def call(self, cmd: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"publishers process {self.pid} exited ({self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def add(self, specs: list[dict[str, Any]], direction: str) -> dict[str, Any]:
        """Connect more publishers."""
        return await self.call({"add": specs, "direction": direction})

    async def stats(self) -> dict[str, Any]:
        """Frames released late since the last call."""
        return await self.call({"stats": True})

    async def quit(self) -> None:
        """Hang everyone up and wait for the process to end."""
        with contextlib.suppress(Exception):
            await self.call({"quit": True}, timeout=30)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
