"""The mixer: mix-minus, mute, limiter, and the input buffer's priming and bounds."""

from __future__ import annotations

import numpy as np

from ruang.media.buffer import MAX_DEPTH, START_DEPTH, TICK_SAMPLES, InputBuffer
from ruang.media.mixer import LIMIT, Limiter, Mixer
from ruang_bench.tools.tones import sine, tone_levels_db


def tick_of(freq: float, amp: float = 0.3, start: int = 0) -> np.ndarray:
    return sine(freq, TICK_SAMPLES / 48_000, amp, start)


def test_mix_minus_leaves_out_only_yourself() -> None:
    mixer = Mixer()
    a, b, c = tick_of(440), tick_of(660), tick_of(880)
    program, returns = mixer.tick({"a": a, "b": b, "c": c}, set())
    assert np.allclose(program, a + b + c, atol=1e-6)
    assert np.allclose(returns["a"], b + c, atol=1e-6)
    assert np.allclose(returns["b"], a + c, atol=1e-6)


def test_muted_speaker_is_heard_by_nobody() -> None:
    mixer = Mixer()
    a, b = tick_of(440), tick_of(660)
    program, returns = mixer.tick({"a": a, "b": b, "c": None}, {"b"})
    assert np.allclose(program, a, atol=1e-6)
    assert np.allclose(returns["c"], a, atol=1e-6)
    assert np.allclose(returns["a"], 0, atol=1e-6)
    assert np.allclose(returns["b"], a, atol=1e-6)  # a muted speaker still hears the others


def test_silence_when_nobody_speaks() -> None:
    program, returns = Mixer().tick({}, set())
    assert program.shape == (TICK_SAMPLES,) and not program.any() and returns == {}


def test_limiter_never_clips_and_keeps_the_tones() -> None:
    mixer = Mixer()
    out = []
    for i in range(100):  # 13 loud speakers at once (12 on 440 Hz, one on 660): a sum near 7.8
        inputs = {str(k): tick_of(440 if k else 660, 0.6, i * TICK_SAMPLES) for k in range(13)}
        program, returns = mixer.tick(inputs, set())
        assert np.max(np.abs(program)) <= LIMIT + 1e-6
        assert all(np.max(np.abs(r)) <= LIMIT + 1e-6 for r in returns.values())
        out.append(program)
    audio = np.concatenate(out[10:])
    levels, rest = tone_levels_db(audio, [440.0, 660.0])
    assert min(levels.values()) - rest > 20


def test_limiter_recovers_after_a_peak() -> None:
    lim = Limiter()
    lim.process(np.full(TICK_SAMPLES, 3.0, dtype=np.float32))
    assert lim.gain < 0.5
    for _ in range(40):
        lim.process(np.full(TICK_SAMPLES, 0.1, dtype=np.float32))
    assert lim.gain == 1.0


def test_buffer_primes_then_plays_then_underruns() -> None:
    buf = InputBuffer()
    buf.push(np.ones(TICK_SAMPLES * (START_DEPTH - 1) + 100, dtype=np.float32))
    assert buf.pop() is None  # not primed yet: one late packet must not become a gap
    buf.push(np.ones(TICK_SAMPLES - 100, dtype=np.float32))
    got = [buf.pop() for _ in range(START_DEPTH)]
    assert all(g is not None and g.size == TICK_SAMPLES for g in got)
    assert buf.pop() is None and buf.underruns == 1


def test_buffer_is_bounded() -> None:
    buf = InputBuffer()
    buf.push(np.arange(TICK_SAMPLES * (MAX_DEPTH + 5), dtype=np.float32))
    assert buf.depth == MAX_DEPTH and buf.dropped_ticks == 5
    first = buf.pop()
    assert first is not None and first[0] == 5 * TICK_SAMPLES  # the oldest audio went first


def test_returns_only_for_those_listening() -> None:
    mixer = Mixer()
    a, b = tick_of(440), tick_of(660)
    program, returns = mixer.tick({"a": a, "b": b}, set(), listening={"b"})
    assert set(returns) == {"b"} and np.allclose(returns["b"], a, atol=1e-6)
    assert np.allclose(program, a + b, atol=1e-6)


def test_a_lasting_excess_after_a_burst_shrinks_back() -> None:
    from ruang.media.buffer import SHRINK_AFTER_TICKS

    buf = InputBuffer()
    buf.push(np.zeros(TICK_SAMPLES * 7, dtype=np.float32))  # a stalled sender's backlog
    depths = []
    for _ in range(6 * SHRINK_AFTER_TICKS):
        buf.push(np.zeros(TICK_SAMPLES, dtype=np.float32))  # then one tick per tick again
        assert buf.pop() is not None
        depths.append(buf.depth)
    assert depths[0] == 7 and depths[-1] <= START_DEPTH + 1
    assert buf.dropped_ticks == 7 - (START_DEPTH + 1) and buf.underruns == 0


def test_ordinary_jitter_is_left_alone() -> None:
    buf = InputBuffer()
    for i in range(500):  # two ticks every other tick: depth swings, never lastingly high
        if i % 2 == 0:
            buf.push(np.zeros(2 * TICK_SAMPLES, dtype=np.float32))
        buf.pop()
    assert buf.dropped_ticks == 0
