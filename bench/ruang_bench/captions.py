"""`ruang bench captions`: what live captions cost, and where.

1. The engine alone: CPU seconds per second of speech (real-time factor) on espeak-ng speech
   (`-v en-us+f2 -s 150`, 16 kHz) or a WAV of your own (`--wav`), and the words it found.
2. The captioning process fed as a media process feeds it: N spaces talking without pause,
   in real time, through `CaptionFeed` (the bounded queue, the pipe): its CPU per captioned
   space (cores), the speech dropped and the backlog.
3. The mixer's side: the tap's cost per tick, heard and not heard (a quiet space's share).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from ruang.captions.base import SAMPLE_RATE
from ruang.captions.engines import DEFAULT_ENGINE, ENGINES, load
from ruang.captions.feed import CaptionFeed
from ruang_bench.common import emit, need, process_cpu_s

SENTENCE = (
    "The people in the room talk about the music and the water every morning. "
    "We open the window and drink coffee with good friends."
)
TICK_S = 0.020


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options."""
    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE)
    p.add_argument("--model", default="", help="the engine's model folder (whisper needs one)")
    p.add_argument("--wav", type=Path, help="16 kHz mono WAV to use instead of espeak-ng speech")
    p.add_argument("--repeat", type=int, default=3, help="engine runs over the speech")
    p.add_argument("--spaces", default="1,2", help="captioned spaces talking at once (list)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per space count")
    p.add_argument("--out", type=Path, help="also write the JSON here")


def _speech(args: argparse.Namespace, folder: Path) -> np.ndarray:
    path = args.wav
    if path is None:
        raw, path = folder / "raw.wav", folder / "speech.wav"
        subprocess.run([need("espeak-ng"), "-v", "en-us+f2", "-s", "150", "-w", str(raw),
                        SENTENCE], check=True)  # fmt: skip
        subprocess.run([need("ffmpeg"), "-v", "error", "-y", "-i", str(raw), "-ac", "1",
                        "-ar", str(SAMPLE_RATE), str(path)], check=True)  # fmt: skip
    with wave.open(str(path)) as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1:
            raise SystemExit(f"{path}: need 16 kHz mono, got {w.getframerate()} Hz")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def engine_rtf(args: argparse.Namespace, pcm: np.ndarray) -> dict[str, Any]:
    """The engine's CPU per second of speech, over `args.repeat` runs."""
    began = time.process_time()
    engine = load(args.engine, args.model)
    loaded = time.process_time() - began
    runs, text = [], ""
    for _ in range(args.repeat):
        began = time.process_time()
        words = engine.transcribe(pcm)
        runs.append((time.process_time() - began) / (len(pcm) / SAMPLE_RATE))
        text = " ".join(w.text for w in words)
    return {"speech_s": round(len(pcm) / SAMPLE_RATE, 2), "load_cpu_s": round(loaded, 2),
            "rtf_min": round(min(runs), 3), "rtf_median": round(float(np.median(runs)), 3),
            "text": text}  # fmt: skip


async def process_cost(args: argparse.Namespace, pcm: np.ndarray, spaces: int, folder: Path
                       ) -> dict[str, Any]:  # fmt: skip
    """Feed `spaces` spaces of continuous speech in real time for args.duration seconds."""
    for i in range(spaces):
        (folder / f"space{i}").mkdir(exist_ok=True)
    feed = CaptionFeed(CaptionFeed.worker_command(folder, args.engine, args.model), spaces)
    captions: list[dict[str, Any]] = []
    feed.start(lambda space_id, caption: captions.append(caption))
    taps = [feed.attach(f"space{i}") for i in range(spaces)]
    program = np.repeat(pcm.astype(np.float32) / 32768, 3)  # as the 48 kHz program carries it
    program = np.concatenate([program, np.zeros(-len(program) % 960, np.float32)])
    ticks = program.reshape(-1, 960)
    silence = np.zeros(960, np.float32)
    t0 = wall0 = time.monotonic()
    cpu0: float | None = None
    n = 0
    tap_s = 0.0
    while (elapsed := time.monotonic() - t0) < args.duration:
        k = n % (len(ticks) + 25)  # the sentence, then 0.5 s where the gates close
        heard = k < len(ticks)
        began = time.thread_time()  # this thread's CPU: the machine here is shared
        for tap in taps:
            assert tap is not None
            tap.tick(n * TICK_S, ticks[k] if heard else silence, heard)
        tap_s += time.thread_time() - began
        n += 1
        if cpu0 is None and feed._proc is not None:  # from the captioning process's start
            cpu0, wall0 = process_cpu_s(feed._proc.pid), time.monotonic()
        await asyncio.sleep(max(0.0, t0 + n * TICK_S - time.monotonic()))
    proc = feed._proc
    cpu = process_cpu_s(proc.pid) - (cpu0 or 0.0) if proc is not None else 0.0
    wall = time.monotonic() - wall0
    stats = feed.stats
    await asyncio.to_thread(feed.stop)
    return {
        "spaces": spaces,
        "seconds": round(elapsed, 1),
        "captioner_cores": round(cpu / wall, 3),
        "cores_per_space": round(cpu / wall / spaces, 3),
        "captions": len(captions),
        "speech_transcribed_s": round(stats.audio_s, 1),
        "dropped_s": round(stats.dropped_s, 1),
        "backlog_s": round(stats.backlog_s, 1),
        "rtf_in_process": round(stats.rtf, 3),
        "tap_us_per_tick_per_space": round(tap_s / max(1, n) / spaces * 1e6, 2),
    }


def tap_quiet_cost(ticks: int = 50_000) -> float:
    """µs per tick of a captioned space where nobody is heard (the tap's one check)."""
    feed = CaptionFeed(["true"], 1)
    tap = feed.attach("quiet")
    assert tap is not None
    silence = np.zeros(960, np.float32)
    began = time.thread_time()
    for i in range(ticks):
        tap.tick(i * TICK_S, silence, False)
    return (time.thread_time() - began) / ticks * 1e6


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Everything above."""
    with tempfile.TemporaryDirectory(prefix="ruang-bench-captions-") as tmp:
        folder = Path(tmp)
        pcm = _speech(args, folder)
        rtf = engine_rtf(args, pcm)
        rows = [await process_cost(args, pcm, int(s), folder) for s in args.spaces.split(",")]
    quiet_us = tap_quiet_cost()
    result = {
        "engine": args.engine,
        "engine_alone": rtf,
        "fed_in_real_time": rows,
        "tap_us_per_quiet_tick": round(quiet_us, 3),
        "quiet_space_cores": round(quiet_us * 50 / 1e6, 7),  # 50 ticks a second
    }
    worst = rows[-1]
    summary = (
        f"captions ({args.engine}): RTF {rtf['rtf_median']} on one core; "
        + ", ".join(f"{r['spaces']} talking: {r['cores_per_space']} cores/space, "
                    f"dropped {r['dropped_s']} s of {r['seconds']}" for r in rows)
        + f"; a quiet space's tap {result['quiet_space_cores']} cores"
        + (f" (backlog {worst['backlog_s']} s at the end)" if worst["backlog_s"] else "")
    )  # fmt: skip
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("captions", args, result, summary)
