"""The default engine and the captioning process on real synthetic speech."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ruang.captions.base import SAMPLE_RATE, EngineUnavailable
from ruang.captions.engines import check, load
from ruang.captions.webvtt import CAPTIONS_FILE, END_NOTE, parse
from ruang.captions.wire import AUDIO, CLOSE, END, Message, read_message
from speech import found, speak


def test_pocketsphinx_finds_the_key_words_with_times(tmp_path: Path) -> None:
    pcm = speak(tmp_path / "speech.wav")
    words = load("pocketsphinx").transcribe(pcm)
    text = " ".join(w.text for w in words)
    hits = found(text)
    assert len(hits) >= 6, text  # 8 of 9 measured here on the WAV itself
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert 0 <= words[0].start < 1.0 and words[-1].end <= len(pcm) / SAMPLE_RATE + 0.05


def test_whisper_without_package_or_model_is_a_clear_error(tmp_path: Path) -> None:
    # faster-whisper cannot be installed here: only its start-up refusals are tested
    with pytest.raises(EngineUnavailable, match="--captions-model"):
        check("whisper", "")
    with pytest.raises(EngineUnavailable, match="model.bin"):
        check("whisper", str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(EngineUnavailable, match="faster-whisper"):
        check("whisper", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="unknown"):
        check("vosk")


def test_serve_refuses_to_start_with_a_missing_engine(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ruang.cli", "serve", "--data-dir", str(tmp_path),
         "--captions-engine", "whisper", "--captions-model", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert "model.bin is missing" in run.stderr


def test_wire_round_trip_and_refusals() -> None:
    msgs = [Message(AUDIO, "abc", 1.5, b"\x01\x00" * 8), Message(END, "abc", 2.0)]
    stream = io.BytesIO(b"".join(m.pack() for m in msgs))
    assert [read_message(stream), read_message(stream), read_message(stream)] == [*msgs, None]
    with pytest.raises(ValueError, match="kind 9"):
        read_message(io.BytesIO(Message(9, "abc", 0.0).pack()))
    truncated = io.BytesIO(msgs[0].pack()[:-3])
    assert read_message(truncated) is None


def test_captioning_process_writes_cues_and_reports(tmp_path: Path) -> None:
    pcm = speak(tmp_path / "speech.wav")
    (tmp_path / "sp1").mkdir()
    chunk = SAMPLE_RATE // 2  # as the media process sends it: 0.5 s messages
    at = 10.0  # the utterance starts 10 s into the space
    stream = b"".join(
        Message(AUDIO, "sp1", at + i / SAMPLE_RATE, pcm[i : i + chunk].tobytes()).pack()
        for i in range(0, len(pcm), chunk)
    )
    stream += Message(END, "sp1", at + len(pcm) / SAMPLE_RATE).pack()
    stream += Message(CLOSE, "sp1", 30.0).pack()
    run = subprocess.run(
        [sys.executable, "-m", "ruang.captions.worker", str(tmp_path), "pocketsphinx"],
        input=stream, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    reports = [json.loads(line) for line in run.stdout.decode().splitlines()]
    captions = [r for r in reports if "text" in r]
    assert len(captions) == 1 and len(found(captions[0]["text"])) >= 6
    assert 10.0 <= captions[0]["start"] < 11.0 < captions[0]["end"] <= 10.0 + len(pcm) / SAMPLE_RATE
    assert 0 < captions[0]["busy_s"] < captions[0]["audio_s"]
    text = (tmp_path / "sp1" / CAPTIONS_FILE).read_text()
    assert text.endswith(END_NOTE)
    cues = parse(text)
    assert [c.text for c in cues] == [captions[0]["text"]]
