"""The stage at its tick: real Opus in and out, one encode per distinct mix, mute undecoded."""

from __future__ import annotations

import numpy as np

from ruang.codecs.opus import OpusDecoder, OpusEncoder
from ruang.live.stage import Stage
from ruang.media.buffer import TICK_SAMPLES, InputBuffer
from ruang_bench.tools.tones import sine, tone_levels_db

TONES = {"a": 450.0, "b": 650.0, "m": 850.0}
TICKS = 100  # 2 s


def run_stage(muted: set[str]) -> tuple[Stage, dict[str, list[bytes]], list[int]]:
    stage = Stage()
    heard: dict[str, list[bytes]] = {sid: [] for sid in [*TONES, "quiet"]}
    buffers = {}
    for sid in heard:
        buffers[sid] = InputBuffer()
        stage.add(sid, buffers[sid], heard[sid].append)
    for sid in muted:
        stage.set_muted(sid, True)
    encoders = {sid: OpusEncoder() for sid in TONES}
    encodes = []
    for i in range(TICKS):
        for sid, freq in TONES.items():
            pcm = sine(freq, TICK_SAMPLES / 48_000, 0.2, i * TICK_SAMPLES)
            buffers[sid].push_packet(encoders[sid].encode(pcm))
        before = stage.stats.encoded
        stage.tick()
        encodes.append(stage.stats.encoded - before)
    return stage, heard, encodes


def decoded(packets: list[bytes]) -> np.ndarray:
    decoder = OpusDecoder()
    return np.concatenate([decoder.decode(p) for p in packets])


def test_each_hears_the_others_and_not_themselves() -> None:
    stage, heard, encodes = run_stage(set())
    assert all(len(p) == TICKS for p in heard.values()), "one packet per tick for everyone"
    # a, b, m talk: three own mixes; "quiet" hears the program: four encodes a tick
    assert encodes[-1] == 4
    for sid, packets in heard.items():
        audio = decoded(packets)[TICK_SAMPLES * 20 :]
        levels, rest = tone_levels_db(audio, list(TONES.values()))
        for other, freq in TONES.items():
            if other == sid:
                assert max(levels.values()) - levels[freq] > 30, f"{sid} hears themselves"
            else:
                assert levels[freq] - rest > 20, f"{sid} does not hear {other}: {levels}"


def test_a_muted_speaker_is_heard_by_nobody_and_not_decoded() -> None:
    stage, heard, encodes = run_stage({"m"})
    assert encodes[-1] == 3  # a and b have their own mixes; m and quiet share the program
    assert stage.stats.dropped_muted == TICKS
    for sid, packets in heard.items():
        audio = decoded(packets)[TICK_SAMPLES * 20 :]
        levels, _ = tone_levels_db(audio, list(TONES.values()))
        assert max(levels.values()) - levels[TONES["m"]] > 30, f"{sid} hears the muted m"
    assert heard["m"][-1] == heard["quiet"][-1], "the muted and the silent share one packet"


def test_nobody_talking_costs_one_encode_for_everyone() -> None:
    stage = Stage()
    sinks: list[list[bytes]] = [[] for _ in range(13)]
    for i, sink in enumerate(sinks):
        stage.add(str(i), InputBuffer(), sink.append)
    for _ in range(5):
        stage.tick()
    assert stage.stats.encoded == 5 and stage.stats.sent == 65


def test_a_dtx_gap_is_silence_and_the_talker_comes_back() -> None:
    """A browser with DTX sends nothing while silent: the gap is silence for the others once
    the gate closes, and the talker's next words are heard again."""
    from ruang.media.activity import HANGOVER_TICKS

    stage = Stage()
    got: list[bytes] = []
    talker = InputBuffer()
    stage.add("a", talker, None)
    stage.add("b", InputBuffer(), got.append)
    encoder = OpusEncoder()
    heard = []
    for i in range(150):
        if not 50 <= i < 100:  # ticks 50–99: nothing arrives at all
            talker.push_packet(encoder.encode(sine(450.0, 0.02, 0.2, i * TICK_SAMPLES)))
        mixes = stage.tick()
        heard.append(mixes.heard)
    assert all(heard[10:50]) and not any(heard[50 + HANGOVER_TICKS + 5 : 100])
    assert all(heard[110:])  # back after the input buffer primes again
    audio = decoded(got)
    gap = audio[(60 + HANGOVER_TICKS) * TICK_SAMPLES : 95 * TICK_SAMPLES]
    assert np.max(np.abs(gap)) < 1e-3
    talk = audio[115 * TICK_SAMPLES :]
    levels, rest = tone_levels_db(talk, [450.0])
    assert levels[450.0] - rest > 20
