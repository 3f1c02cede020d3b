"""Silence from the cache: an exact timeline, seamless returns to sound, well-numbered parts."""

from __future__ import annotations

import asyncio
import io
import struct
from pathlib import Path

import av
import numpy as np

from ruang.codecs.aac import AAC_FRAME_SAMPLES, AacEncoder
from ruang.codecs.opus import OpusEncoder
from ruang.hls.packager import UNITS_PER_PART
from ruang.hls.store import SpaceMediaStore
from ruang.live.pipeline import SpacePipeline
from ruang.live.program import DRAIN_SAMPLES, ProgramEncoder
from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES, InputBuffer
from ruang_bench.tools.tones import sine

PART_SAMPLES = UNITS_PER_PART * AAC_FRAME_SAMPLES  # 0.512 s


def decode_units(asc: bytes, units: list[bytes]) -> np.ndarray:
    ctx = av.CodecContext.create("aac", "r")
    ctx.extradata = asc
    out = []
    for u in units:
        for frame in ctx.decode(av.Packet(u)):
            out.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32)


def program_ticks() -> list[tuple[np.ndarray, bool]]:
    """1 s silence, 2 s tone, 1.2 s silence, 1 s tone: (tick, heard)."""
    ticks: list[tuple[np.ndarray, bool]] = []
    sample = 0
    for seconds, loud in ((1.0, False), (2.0, True), (1.2, False), (1.0, True)):
        for _ in range(round(seconds * 50)):
            pcm = sine(440.0, TICK_SAMPLES / SAMPLE_RATE, 0.3, sample)
            ticks.append((pcm if loud else np.zeros(TICK_SAMPLES, np.float32), loud))
            sample += TICK_SAMPLES
    return ticks


def test_cached_silence_keeps_the_timeline_and_sounds_like_encoding_everything() -> None:
    ticks = program_ticks()
    cached = ProgramEncoder(AacEncoder())
    units: list[bytes] = []
    for pcm, heard in ticks:
        units += cached.encode(pcm, heard)
    units += cached.flush()
    assert cached.cached_units > 50, "most of the silence must come from the cache"

    plain = AacEncoder()
    reference: list[bytes] = []
    for pcm, _ in ticks:
        reference += plain.encode(pcm)
    reference += plain.flush()

    assert len(units) == len(reference), "cached silence must not add or lose a single unit"
    got = decode_units(plain.audio_specific_config, units)
    want = decode_units(plain.audio_specific_config, reference)
    assert got.size == want.size
    signal = float(np.sqrt(np.mean(want**2)))
    error = float(np.sqrt(np.mean((got - want) ** 2)))
    assert error < signal * 0.01, f"decoded stream differs by {error / signal:.3%}"
    # and the silences are silent: no click where the cache takes over or hands back
    delay = AAC_FRAME_SAMPLES
    for start_s, end_s in ((0.05, 0.95), (3.1, 4.15)):
        quiet = got[delay + int(start_s * SAMPLE_RATE) : delay + int(end_s * SAMPLE_RATE)]
        assert np.max(np.abs(quiet)) < 1e-3, f"{start_s}-{end_s} s: peak {np.max(np.abs(quiet))}"


def test_cache_takes_over_only_after_the_encoder_drained() -> None:
    program = ProgramEncoder(AacEncoder())
    assert program.drained
    program.encode(sine(440.0, TICK_SAMPLES / SAMPLE_RATE, 0.3), True)
    assert not program.drained
    zeros = np.zeros(TICK_SAMPLES, np.float32)
    fed = 0
    while not program.drained:
        program.encode(zeros, False)
        fed += TICK_SAMPLES
    assert DRAIN_SAMPLES <= fed < DRAIN_SAMPLES + TICK_SAMPLES


def fragment_numbers(data: bytes) -> tuple[int, int, int]:
    """(mfhd sequence number, tfdt decode time, sample count) of one moof+mdat part."""
    seq = struct.unpack(">I", data[data.index(b"mfhd") + 8 :][:4])[0]
    tfdt = struct.unpack(">Q", data[data.index(b"tfdt") + 8 :][:8])[0]
    count = struct.unpack(">I", data[data.index(b"trun") + 8 :][:4])[0]
    return seq, tfdt, count


def test_idle_then_speaking_then_idle_gives_one_continuous_numbered_stream(
    tmp_path: Path,
) -> None:
    async def scenario() -> SpacePipeline:
        pipeline = SpacePipeline("s", SpaceMediaStore(tmp_path / "s"))
        pipeline._idle_step(3.0)  # nobody on stage: 3 s of cached silence, no tick
        assert pipeline.stats.ticks == 150
        buffer = InputBuffer()
        pipeline.add_speaker("a", buffer, None)
        opus = OpusEncoder()
        for i in range(100):  # 2 s of someone speaking
            buffer.push_packet(opus.encode(sine(440.0, 0.02, 0.3, i * TICK_SAMPLES)))
            pipeline.tick()
        pipeline.remove_speaker("a")
        while not pipeline.idle:  # the encoder drains its sound, then the clock may sleep
            pipeline.tick()
        pipeline._idle_step(pipeline.stats.ticks * 0.02 + 2.0)
        await pipeline.stop(end=True)
        return pipeline

    pipeline = asyncio.run(scenario())
    store = SpaceMediaStore(tmp_path / "s")
    assert store.recover() == pipeline.stats.parts
    parts = [p for seg in store.segments for p in seg.parts]
    assert [(p.msn, p.index) for p in parts] == [(i // 4, i % 4) for i in range(len(parts))]
    decode_time = 0
    for i, part in enumerate(parts):
        data = (tmp_path / "s" / part.uri).read_bytes()
        seq, tfdt, count = fragment_numbers(data)
        assert (seq, tfdt) == (i + 1, decode_time), f"part {part.uri}"
        if i < len(parts) - 1:
            assert count == UNITS_PER_PART and part.duration == PART_SAMPLES / SAMPLE_RATE
        decode_time += count * AAC_FRAME_SAMPLES
    assert decode_time >= pipeline.stats.ticks * TICK_SAMPLES

    init = (tmp_path / "s" / "init.mp4").read_bytes()
    whole = init + b"".join((tmp_path / "s" / p.uri).read_bytes() for p in parts)
    with av.open(io.BytesIO(whole), format="mp4") as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert audio.size == decode_time
    speech = audio[int(3.2 * SAMPLE_RATE) : int(4.8 * SAMPLE_RATE)]
    assert np.sqrt(np.mean(speech**2)) > 0.1, "the speaker's tone is in the program"
    assert np.max(np.abs(audio[: int(2.9 * SAMPLE_RATE)])) < 1e-3
    assert np.max(np.abs(audio[int(5.5 * SAMPLE_RATE) :])) < 1e-3
