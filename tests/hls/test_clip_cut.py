"""Cutting a clip out of the stored segments: whole AAC frames, no re-encode, starting at 0,
only the segments it needs, and what it holds is what the replay holds at that moment (a
signal that changes its tone every half second tells the moments apart)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from ruang.codecs.aac import AacEncoder
from ruang.hls.fmp4 import init_segment
from ruang.hls.packager import UNITS_PER_PART, Packager
from ruang.hls.recording import cut, remux, replay_segments
from ruang.hls.store import PartRecord, SpaceMediaStore
from ruang_bench.tools.tones import sine

RATE = 48_000
STEP_S = 0.5  # the tone changes this often
SECONDS = 40.0
TONES = [300.0 + 100.0 * (i % 9) for i in range(int(SECONDS / STEP_S))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A space that ran SECONDS, its tone stepping through TONES, through the media store."""
    folder = tmp_path_factory.mktemp("spaces") / "abcdefghij"
    store = SpaceMediaStore(folder)
    encoder = AacEncoder()
    store.write_init(init_segment(encoder.audio_specific_config))
    signal = np.concatenate([sine(f, STEP_S, 0.3) for f in TONES]).astype(np.float32)
    units = encoder.encode(signal) + encoder.encode(np.zeros(4096, np.float32))
    packager = Packager()
    began = datetime.now(UTC) - timedelta(seconds=SECONDS)
    whole = len(units) // UNITS_PER_PART * UNITS_PER_PART
    for at in range(0, whole, UNITS_PER_PART):
        for p in packager.add(units[at : at + UNITS_PER_PART]):
            pdt = began + timedelta(seconds=p.start_sample / RATE)
            store.add_part(PartRecord(p.msn, p.index, p.samples, len(p.data), pdt), p.data)
    store.end()
    return folder


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])


def tone_at(pcm: np.ndarray, t: float) -> float:
    """The strongest frequency in 0.2 s around t (inside one step)."""
    piece = pcm[int((t - 0.1) * RATE) : int((t + 0.1) * RATE)]
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size)))
    return float(np.fft.rfftfreq(piece.size, 1 / RATE)[np.argmax(spectrum)])


def test_a_clip_holds_the_replay_at_that_moment(folder: Path, tmp_path: Path) -> None:
    playlist = (folder / "replay.m3u8").read_text()
    whole = tmp_path / "whole.m4a"
    remux(folder, replay_segments(playlist), whole, {})
    replay = decode(whole)
    start = 13.37  # mid-segment, mid-frame
    made = cut(folder, playlist, start, 15.0, tmp_path / "clip.m4a", {"title": "A clip"})
    frame = 1024 / RATE
    assert start - frame <= made.start_s <= start  # the frame holding the start
    assert abs(made.start_s / frame - round(made.start_s / frame)) < 0.05  # a frame boundary
    assert 15.0 - frame <= made.duration_s <= 15.0 + frame
    clip = decode(tmp_path / "clip.m4a")
    assert abs(clip.size / RATE - made.duration_s) < 0.05
    # the clip's every half second is the replay's at start + that
    for k in range(1, 28):
        t = (k + 0.5) * STEP_S - (made.start_s % STEP_S)
        if 0.15 < t < made.duration_s - 0.15:
            assert tone_at(clip, t) == pytest.approx(tone_at(replay, made.start_s + t), abs=8)
    # the first second, sample by sample past the first frame (an AAC decoder needs one)
    first = round(made.start_s / frame) * 1024  # the clip's first sample in the replay
    a, b = clip[2048:RATE], replay[first + 2048 : first + RATE]
    assert np.corrcoef(a, b)[0, 1] > 0.99
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format_tags=title:stream=codec_name,start_time",
            "-of",
            "default=nw=1",
            str(tmp_path / "clip.m4a"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "codec_name=aac" in probe and "start_time=0.000000" in probe and "TAG:title=A clip" in probe
    )


def test_a_window_outside_the_replay_is_refused(folder: Path, tmp_path: Path) -> None:
    playlist = (folder / "replay.m3u8").read_text()
    with pytest.raises(ValueError, match="nothing recorded"):
        cut(folder, playlist, 500.0, 15.0, tmp_path / "x.m4a", {})
    assert not (tmp_path / "x.m4a").exists()
