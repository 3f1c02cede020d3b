"""The recording: a space's stored segments remuxed into one .m4a (no re-encode), made once
even when several ask at once, and the byte-range check of its download."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from ruang.delivery.recordings import NothingRecorded, Recordings, unsatisfiable
from ruang.hls.recording import RECORDING_NAME, RecordingInfo, remux, replay_segments
from ruang_bench.replay import synthesize
from ruang_bench.tools.tones import tone_levels_db

SECONDS = 12.0  # of stored tone


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    folder = tmp_path_factory.mktemp("spaces") / "abcdefghij"
    return folder, synthesize(folder, SECONDS, 440.0)


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])


def test_remux_keeps_every_access_unit_and_says_who_spoke(space, tmp_path: Path) -> None:
    folder, stored_s = space
    segments = replay_segments((folder / "replay.m3u8").read_text())
    info = RecordingInfo("Town hall", "2027-01-01T18:00:00.000Z", ["Host", "Ana"], "on Ruang")
    out = tmp_path / "r.m4a"
    units = remux(folder, segments, out, info.tags())
    assert units * 1024 == round(stored_s * 48_000)  # every access unit, none added
    data = out.read_bytes()
    assert data[4:8] == b"ftyp" and data.index(b"moov") < data.index(b"mdat")  # faststart
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(out)],
            capture_output=True,
            check=True,
        ).stdout
    )
    tags = probe["format"]["tags"]
    assert tags["title"] == "Town hall" and tags["artist"] == "Host, Ana"
    assert tags["date"].startswith("2027-01-01") and tags["creation_time"].startswith("2027")
    assert tags["comment"] == "on Ruang"
    assert probe["streams"][0]["codec_name"] == "aac"
    assert abs(float(probe["format"]["duration"]) - stored_s) < 0.03
    levels, rest = tone_levels_db(_decode(out)[4800:], [440.0])
    assert levels[440.0] - rest > 20


def test_the_recording_is_made_once_for_many_requests(space) -> None:
    folder, _ = space
    recordings = Recordings(folder.parent)
    calls = []

    def info() -> RecordingInfo:
        calls.append(1)
        return RecordingInfo("t", "2027-01-01T00:00:00.000Z", [], "")

    async def many() -> list[Path]:
        return await asyncio.gather(*(recordings.ensure(folder.name, info) for _ in range(5)))

    paths = asyncio.run(many())
    assert set(paths) == {folder / RECORDING_NAME} and calls == [1]
    assert recordings.existing(folder.name) == folder / RECORDING_NAME
    asyncio.run(recordings.delete(folder.name))
    assert not folder.exists()
    with pytest.raises(FileNotFoundError):  # deleted: nothing to make it from
        asyncio.run(recordings.ensure(folder.name, info))


def test_nothing_recorded_without_a_finished_replay(tmp_path: Path) -> None:
    (tmp_path / "qwertyuiop").mkdir()
    (tmp_path / "qwertyuiop" / "replay.m3u8").write_text("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n")
    recordings = Recordings(tmp_path)
    with pytest.raises(NothingRecorded):
        asyncio.run(recordings.ensure("qwertyuiop", lambda: RecordingInfo("t", "", [], "")))


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, True),
        ("bytes=0-99", True),
        ("bytes=500-", True),
        ("bytes=-100", True),
        ("bytes=0-0, 10-20", True),
        ("bytes=999-5000", True),  # ends past the file: served up to its end
        ("bytes=1000-", False),  # starts past the last byte
        ("bytes=20-10", False),
        ("bytes=-0", False),
        ("items=0-5", False),
        ("bytes=", False),
        ("bytes=a-b", False),
    ],
)
def test_ranges_outside_the_file_are_a_json_416(header: str | None, ok: bool) -> None:
    refusal = unsatisfiable(header, 1000)
    assert (refusal is None) == ok
    if refusal is not None:
        assert refusal.status == 416 and refusal.code == "range_not_satisfiable"
        assert refusal.headers["Content-Range"] == "bytes */1000"


def test_a_crash_mid_remux_leaves_no_recording_and_the_next_request_makes_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "zxcvbnmasd"
    synthesize(folder, 3.0)
    (folder / (RECORDING_NAME + ".tmp")).write_bytes(b"half a file from a killed worker")
    recordings = Recordings(tmp_path)
    assert recordings.existing(folder.name) is None  # only a whole file, renamed, counts
    made = asyncio.run(
        recordings.ensure(folder.name, lambda: RecordingInfo("t", "2027-01-01T00:00:00Z", [], ""))
    )
    assert abs(len(_decode(made)) / 48_000 - 3.072) < 0.03
    assert not (folder / (RECORDING_NAME + ".tmp")).exists()
