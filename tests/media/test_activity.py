"""The voice gate, and the distinct mixes it makes possible."""

from __future__ import annotations

import numpy as np
import pytest

from ruang.media.activity import HANGOVER_TICKS, OPEN_DBFS, VoiceGate, mean_square
from ruang.media.buffer import TICK_SAMPLES
from ruang.media.mixer import Mixer
from ruang_bench.tools.tones import sine


def tick_at_dbfs(db: float, freq: float = 440.0) -> np.ndarray:
    """A tick of tone whose RMS is `db` dBFS."""
    return sine(freq, TICK_SAMPLES / 48_000, float(np.sqrt(2) * 10 ** (db / 20)))


def test_level_is_measured_as_rms() -> None:
    assert 10 * np.log10(mean_square(tick_at_dbfs(-20.0))) == pytest.approx(-20.0, abs=0.05)
    assert mean_square(np.zeros(0, dtype=np.float32)) == 0.0


def test_gate_opens_on_the_first_loud_tick_and_holds_through_the_hangover() -> None:
    gate = VoiceGate()
    quiet, loud = tick_at_dbfs(OPEN_DBFS - 6), tick_at_dbfs(OPEN_DBFS + 6)
    assert not gate.update(quiet) and not gate.update(None)
    assert gate.update(loud)  # the onset tick itself is heard
    held = [gate.update(quiet) for _ in range(HANGOVER_TICKS - 1)]
    assert all(held), "a pause shorter than the hangover must not close the gate"
    assert not gate.update(quiet)
    assert not gate.update(None)
    assert gate.opened == 1


def test_speech_that_pauses_less_than_the_hangover_stays_open() -> None:
    gate = VoiceGate()
    loud = tick_at_dbfs(-20)
    decisions = []
    for i in range(200):
        decisions.append(gate.update(loud if i % (HANGOVER_TICKS - 2) == 0 else None))
    assert all(decisions) and gate.opened == 1


def test_closing_is_immediate_on_mute() -> None:
    gate = VoiceGate()
    assert gate.update(tick_at_dbfs(-10))
    gate.close()
    assert not gate.is_open


def test_silent_and_muted_listeners_share_the_program() -> None:
    mixer = Mixer()
    a, b, m = tick_at_dbfs(-20, 440), tick_at_dbfs(-20, 660), tick_at_dbfs(-20, 880)
    inputs = {"a": a, "b": b, "m": m, "quiet": None, "sendonly": tick_at_dbfs(-20, 1000)}
    listening = ["a", "b", "m", "quiet"]
    mixes = mixer.mix(inputs, {"m"}, listening)
    assert mixes.heard
    # only the listening speakers who are heard get a mix of their own
    assert set(mixes.own) == {"a", "b"}
    everyone = a + b + inputs["sendonly"]
    assert np.allclose(mixes.program, everyone, atol=1e-6)
    assert np.allclose(mixes.own["a"], everyone - a, atol=1e-6)
    assert np.allclose(mixes.own["b"], everyone - b, atol=1e-6)
    # the muted and the silent hear the program itself: one encode serves both
    assert mixes.for_listener("m") is mixes.program
    assert mixes.for_listener("quiet") is mixes.program


def test_nobody_heard_means_an_all_zero_program() -> None:
    mixes = Mixer().mix({"a": None, "b": tick_at_dbfs(-10)}, {"b"}, ["a", "b"])
    assert not mixes.heard and not mixes.own and not mixes.program.any()


def test_a_new_own_mix_starts_from_the_program_limiter_gain() -> None:
    mixer = Mixer()
    loud = {str(k): sine(440 + 20 * k, TICK_SAMPLES / 48_000, 0.6) for k in range(6)}
    mixer.mix(loud, set(), [])  # the program's limiter engages; nobody listens yet
    mixes = mixer.mix(loud, set(), ["0"])
    # no jump: the first own mix is limited as hard as the program was
    assert np.max(np.abs(mixes.own["0"])) <= np.max(np.abs(mixes.program)) + 1e-6
