"""One audio file of a whole space: its stored CMAF segments remuxed into a single .m4a.

The replay's init segment and its segments, concatenated, are a fragmented MP4 stream; PyAV
(ffmpeg's libavformat) reads it and writes the same AAC access units into one ordinary MP4
(`ipod` muxer: .m4a brands) with `+faststart`, so the index (moov) comes first and players
start before the end. Nothing is decoded or encoded: the file is the live audio, bit for bit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

RECORDING_NAME = "recording.m4a"
_CHUNK_BYTES = 1 << 16  # read-ahead of the concatenated input


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What the file's metadata says: the space's title, when it happened, who spoke."""

    title: str
    date: str  # ISO 8601 date-time of the start, UTC
    artists: Sequence[str]
    comment: str

    def tags(self) -> dict[str, str]:
        """The container metadata (ffmpeg's names: title, date, creation_time, artist,
        comment)."""
        tags = {"title": self.title, "date": self.date, "creation_time": self.date}
        if self.artists:
            tags["artist"] = ", ".join(self.artists)
        if self.comment:
            tags["comment"] = self.comment
        return tags


def replay_segments(playlist: str) -> list[str]:
    """The segment names a replay playlist lists, in order (the init is `init.mp4`)."""
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


class _Concatenated(io.RawIOBase):
    """Several files read as one stream, one open file at a time."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(reversed(paths))
        self._file: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            if self._file is None:
                if not self._paths:
                    return 0
                self._file = open(self._paths.pop(), "rb")  # noqa: SIM115  closed below
            n = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def remux(folder: Path, segments: Sequence[str], out: Path, tags: Mapping[str, str]) -> int:
    """Write `folder`'s init.mp4 and `segments` as one faststart .m4a at `out` (replaced
    atomically, fsync'd); returns the number of access units written. Raises ValueError when
    the segments hold no audio, OSError when a file is missing."""
    paths = [folder / "init.mp4", *(folder / name for name in segments)]
    tmp = out.with_name(out.name + ".tmp")
    units = 0
    source = io.BufferedReader(_Concatenated(paths), _CHUNK_BYTES)
    with source, av.open(source, "r", format="mp4") as inp:
        stream = inp.streams.audio[0]
        options = {"movflags": "+faststart"}  # the index first: players start at once
        with av.open(str(tmp), "w", format="ipod", options=options) as output:
            output.metadata.update(tags)
            copy = output.add_stream_from_template(stream)
            for packet in inp.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                output.mux(packet)
                units += 1
    if not units:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"no audio in {folder}'s {len(segments)} segments")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, out)
    return units


@dataclass(frozen=True, slots=True)
class Cut:
    """What a cut holds: where it starts on the replay and how long it is, seconds."""

    start_s: float
    duration_s: float
    units: int  # AAC access units (1024 samples each)


def replay_durations(playlist: str) -> list[tuple[str, float]]:
    """The segments a replay playlist lists with their durations (EXTINF), in order."""
    out: list[tuple[str, float]] = []
    duration = None
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            out.append((line, duration))
            duration = None
    return out


def cut(
    folder: Path,
    playlist: str,
    start_s: float,
    duration_s: float,
    out: Path,
    tags: Mapping[str, str],
) -> Cut:
    """Write the access units of [start_s, start_s + duration_s) of the replay (seconds from
    its start) as one faststart .m4a at `out`, cut at AAC frame boundaries without re-encoding
    (a frame is 1024 samples, 21.3 ms: the cut starts at the frame holding start_s) and
    starting at time 0. Only the segments the window touches are read. Raises ValueError when
    the window holds no audio of the replay."""
    segments = replay_durations(playlist)
    offset = 0.0  # where the first segment the window touches starts
    chosen: list[str] = []
    end_s = start_s + duration_s
    at = 0.0
    for name, length in segments:
        if at + length > start_s and at < end_s:
            if not chosen:
                offset = at
            chosen.append(name)
        at += length
    if not chosen:
        raise ValueError(f"nothing recorded at {start_s:.1f}–{end_s:.1f} s (of {at:.1f} s)")
    paths = [folder / "init.mp4", *(folder / name for name in chosen)]
    tmp = out.with_name(out.name + ".tmp")
    units, base, began, start_at, rate = 0, None, None, start_s, 48_000
    source = io.BufferedReader(_Concatenated(paths), _CHUNK_BYTES)
    with source, av.open(source, "r", format="mp4") as inp:
        stream = inp.streams.audio[0]
        rate = stream.rate or rate
        tb = stream.time_base
        assert tb is not None
        with av.open(str(tmp), "w", format="ipod", options={"movflags": "+faststart"}) as output:
            output.metadata.update(tags)
            copy = output.add_stream_from_template(stream)
            for packet in inp.demux(stream):
                if packet.pts is None or packet.dts is None:
                    continue
                if base is None:
                    base = packet.pts  # the first chosen segment's start
                t = float((packet.pts - base) * tb) + offset
                frame_s = float((packet.duration or 1024) * tb)
                if t + frame_s <= start_s:
                    continue
                if t >= end_s:
                    break
                if began is None:
                    began = packet.pts
                    start_at = t
                packet.pts -= began
                packet.dts -= began
                packet.stream = copy
                output.mux(packet)
                units += 1
    if not units:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"no audio at {start_s:.1f}–{end_s:.1f} s")
    os.replace(tmp, out)
    return Cut(round(start_at, 3), round(units * 1024 / rate, 3), units)
